"""The settings form's rules, on plain dicts."""

from __future__ import annotations

from web.settings_form import format_sku_buffers, parse_settings, parse_sku_buffers

BASE = {"push_on": "paid", "stock_interval_minutes": "5", "safety_buffer": "0", "sku_buffers": "", "hold_tags": ""}


def test_a_complete_form_gives_every_setting() -> None:
    parsed = parse_settings(
        {**BASE, "hold_tags": " review,, vip ,review", "location_id": "gid://shopify/Location/9"},
        {"notify_customer", "required:phone"},
    )
    assert parsed.errors == {}
    assert parsed.values["hold_tags"] == ["review", "vip"]
    assert parsed.values["notify_customer"] is True and parsed.values["hold_high_risk"] is False
    assert parsed.values["required_address_fields"] == ["address1", "city", "country_code", "phone"]


def test_out_of_range_numbers_and_unknown_choices_are_errors() -> None:
    parsed = parse_settings({**BASE, "push_on": "shipped", "stock_interval_minutes": "x", "safety_buffer": "-1"}, set())
    assert set(parsed.errors) == {"push_on", "stock_interval_minutes", "safety_buffer"}


def test_a_location_with_spaces_or_markup_is_refused() -> None:
    assert "location_id" in parse_settings({**BASE, "location_id": "<script>"}, set()).errors


def test_sku_buffers_read_equals_or_colon_and_report_bad_lines() -> None:
    assert parse_sku_buffers("A-1 = 2\nB 2: 3\n\n") == ({"A-1": 2, "B 2": 3}, [])
    assert parse_sku_buffers("C = -1\nD")[1] == ["C = -1", "D"]
    assert format_sku_buffers({"B": 1, "A": 2}) == "A = 2\nB = 1"
