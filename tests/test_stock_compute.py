"""What the shop should show and what to write, with plain values (no database, no HTTP)."""

from __future__ import annotations

from integrations.model import InventoryLevel
from jobs.stock_compute import (
    DUPLICATE,
    NOT_MANAGED,
    UNKNOWN,
    Buffers,
    MapEntry,
    after_refusal,
    believed,
    locate,
    plan,
    target,
)

LOC = "gid://shopify/Location/1"


def item(n: int, *, managed: bool = True, stocked: bool = True) -> list[MapEntry]:
    return [MapEntry(f"gid://shopify/InventoryItem/{n}", managed, frozenset({LOC}) if stocked else frozenset())]


def level(sku: str, fulfillable: int, location: str = "WH-1", on_hand: int | None = None) -> InventoryLevel:
    return InventoryLevel(
        sku=sku, location=location, on_hand=on_hand if on_hand is not None else fulfillable, fulfillable=fulfillable
    )


def test_the_shop_shows_fulfillable_less_reserved_less_buffer_never_below_zero() -> None:
    assert target(10, 3, 1) == 6
    assert target(2, 1, 0) == 1
    assert target(1, 0, 1) == 0
    assert target(0, 3, 0) == 0


def test_a_per_sku_buffer_overrides_the_shops_and_a_negative_one_counts_as_none() -> None:
    buffers = Buffers(default=2, per_sku={"A": 0, "B": 5, "C": -3})
    assert (buffers.of("A"), buffers.of("B"), buffers.of("C"), buffers.of("Z")) == (0, 5, 0, 2)


def test_reserved_units_and_buffers_are_taken_off_and_only_differences_are_planned() -> None:
    levels = [level("A", 10), level("B", 10), level("C", 2), level("D", 1)]
    catalogue = {"A": item(1), "B": item(2), "C": item(3), "D": item(4)}
    shown = {(LOC, "A"): 6, (LOC, "B"): 9, (LOC, "D"): 0}

    result = plan(levels, {}, LOC, {"A": 3, "B": 3, "C": 1}, Buffers(1, {"C": 0}), catalogue, shown)

    assert result.targets == {LOC: {"A": 6, "B": 6, "C": 1, "D": 0}}
    assert [(c.sku, c.quantity, c.expected) for c in result.changes] == [("B", 6, 9), ("C", 1, None)]
    assert result.unchanged == 2 and result.skipped == {}


def test_unknown_duplicate_unmanaged_and_unstocked_skus_are_reported_not_guessed() -> None:
    levels = [level(s, 5) for s in ("NOPE", "TWICE", "UNTRACKED", "ELSEWHERE", "OK")]
    catalogue = {
        "TWICE": item(1) + item(2),
        "UNTRACKED": item(3, managed=False),
        "ELSEWHERE": item(4, stocked=False),
        "OK": item(5),
    }

    result = plan(levels, {}, LOC, {}, Buffers(), catalogue, {})

    assert result.skipped == {
        "NOPE": UNKNOWN,
        "TWICE": DUPLICATE.format(n=2),
        "UNTRACKED": NOT_MANAGED,
        "ELSEWHERE": f"not stocked at location {LOC}",
    }
    assert [c.sku for c in result.changes] == ["OK"]


def test_provider_locations_mapped_to_one_shop_location_are_summed_and_unmapped_ones_reported() -> None:
    levels = [level("A", 4, "FC-1"), level("A", 3, "FC-2"), level("B", 9, "FC-9")]
    assert locate(levels, {}, LOC) == {LOC: {"A": 7, "B": 9}}

    result = plan(levels, {"FC-1": LOC, "FC-2": LOC}, LOC, {}, Buffers(), {"A": item(1), "B": item(2)}, {})

    assert result.targets == {LOC: {"A": 7}}
    assert result.skipped == {"B": "provider location FC-9 is not mapped to a shop location"}


def test_a_sku_written_before_that_the_provider_no_longer_reports_goes_to_zero() -> None:
    result = plan(
        [level("A", 1)], {}, LOC, {}, Buffers(), {"A": item(1), "GONE": item(2)}, {(LOC, "GONE"): 4}, [(LOC, "GONE")]
    )
    assert [(c.sku, c.quantity, c.expected) for c in result.changes] == [("A", 1, None), ("GONE", 0, 4)]


def test_what_the_shop_shows_is_our_last_write_less_the_orders_received_since() -> None:
    assert believed(10, 3) == 7
    assert believed(10, 0) == 10


def test_after_a_refusal_sales_the_shop_made_that_relais_has_not_seen_stay_subtracted() -> None:
    # We expected 10, the shop holds 9: one unit sold through an order Relais has not received.
    assert after_refusal(wanted=20, expected=10, current=9) == 19
    # The shop gained units (a merchant's edit): the provider's count wins.
    assert after_refusal(wanted=20, expected=10, current=14) == 20
    # Never below zero, and no basis means nothing to subtract.
    assert after_refusal(wanted=1, expected=10, current=2) == 0
    assert after_refusal(wanted=5, expected=None, current=2) == 5
