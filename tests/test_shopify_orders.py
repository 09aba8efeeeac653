"""Shopify's order payload becomes the neutral order model."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from integrations.shopify.orders import parse_order
from tests.fakes.shopify_webhooks import paid_order, sample_order


def test_shopifys_sample_order_normalises_with_address_method_and_contact() -> None:
    order = parse_order(sample_order())
    assert order.platform_order_id == "450789469"
    assert order.ship_to is not None and order.ship_to.city == "Louisville" and order.ship_to.country_code == "US"
    assert order.shipping_method == "Free Shipping"
    assert order.contact.email == "bob.norman@mail.example.com"


def test_ids_above_two_to_the_53_stay_exact() -> None:
    assert parse_order(paid_order(820982911946154508)).platform_order_id == "820982911946154508"


def test_gift_cards_and_lines_not_requiring_shipping_are_not_shippable() -> None:
    order = parse_order(paid_order())
    assert [line.sku for line in order.shippable_lines] == ["IPOD2008GREEN", "IPOD2008RED"]


def test_current_quantity_wins_over_the_original_quantity() -> None:
    payload = paid_order()
    payload["line_items"][0]["current_quantity"] = 1
    assert parse_order(payload).lines[0].quantity == 1


def test_paid_and_cancelled_come_from_financial_status_and_cancelled_at() -> None:
    assert parse_order(paid_order(financial_status="pending")).paid is False
    assert parse_order(paid_order(cancelled_at="2026-11-20T11:00:00Z")).cancelled is True


def test_a_payload_without_line_items_is_refused() -> None:
    payload = paid_order()
    del payload["line_items"]
    with pytest.raises(ValidationError):
        parse_order(payload)
