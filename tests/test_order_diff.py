"""The diff of an edited order against what the provider holds, and the plan: plain values only."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from integrations.model import Address, Line, LineChange, Order, OrderChanges
from jobs import order_diff, states

HOME = Address(name="Ada", address1="5 rue de la Paix", city="Paris", country_code="FR")
MOVED = dataclasses.replace(HOME, address1="9 quai Voltaire", city="Lyon")


def order(*lines: tuple[str, str, int], ship_to: Address | None = HOME) -> Order:
    return Order(
        platform_order_id="1",
        name="#1",
        paid=True,
        cancelled=False,
        updated_at=datetime(2026, 11, 20, tzinfo=UTC),
        lines=tuple(Line(line_id, sku, qty, True) for line_id, sku, qty in lines),
        ship_to=ship_to,
    )


SENT = order_diff.sent_from(order(("1", "MUG", 2), ("2", "CAP", 1)), "7-1")


def test_an_unchanged_order_has_no_changes_whatever_else_changed() -> None:
    again = dataclasses.replace(order(("1", "MUG", 2), ("2", "CAP", 1)), tags=("vip",), name="#1 (edited)")
    assert order_diff.diff(SENT, again).empty


def test_a_corrected_address_is_one_address_change() -> None:
    changes = order_diff.diff(SENT, order(("1", "MUG", 2), ("2", "CAP", 1), ship_to=MOVED))
    assert changes == OrderChanges(address=MOVED)
    assert order_diff.describe(changes) == "shipping address changed (now Lyon, FR)"


def test_lines_added_removed_and_requantified_are_each_named() -> None:
    changes = order_diff.diff(SENT, order(("1", "MUG", 3), ("2", "CAP", 0), ("3", "PIN", 1)))
    assert changes.lines == (LineChange("1", "MUG", 2, 3), LineChange("2", "CAP", 1, 0), LineChange("3", "PIN", 0, 1))
    assert order_diff.describe(changes) == "line MUG quantity 2 → 3; line CAP removed (was 1); line PIN added (1)"


def test_a_line_whose_product_was_swapped_is_one_out_and_one_in() -> None:
    changes = order_diff.diff(SENT, order(("1", "MUG-XL", 2), ("2", "CAP", 1)))
    assert changes.lines == (LineChange("1", "MUG", 2, 0), LineChange("1", "MUG-XL", 0, 2))


def test_the_snapshot_survives_its_json_form() -> None:
    data = order_diff.sent_to_json(SENT)
    assert order_diff.sent_from_json(data["reference"], data["ship_to"], data["lines"]) == SENT


def plan(now: Order, state: str = states.PUSHED, editable: frozenset[str] = frozenset({"address"})) -> order_diff.Plan:
    return order_diff.plan(order_diff.diff(SENT, now), now, state, "shipbob", editable)


def test_an_address_change_is_updated_in_place_where_the_provider_can() -> None:
    assert plan(order(("1", "MUG", 2), ("2", "CAP", 1), ship_to=MOVED)).action == order_diff.UPDATE


def test_a_line_change_the_provider_cannot_make_is_cancelled_and_sent_again() -> None:
    decided = plan(order(("1", "MUG", 2)))
    assert decided.action == order_diff.RECREATE
    assert decided.reason == (
        "line CAP removed (was 1): shipbob cannot change this in place, so it is cancelled and sent again"
    )
    assert plan(order(("1", "MUG", 2)), editable=frozenset({"address", "lines"})).action == order_diff.UPDATE


def test_an_edit_after_shipping_is_held_with_the_reason() -> None:
    for state in (states.PARTIALLY_SHIPPED, states.SHIPPED, states.DELIVERED):
        decided = plan(order(("1", "MUG", 2), ("2", "CAP", 1), ship_to=MOVED), state=state)
        assert decided.action == order_diff.HOLD
        assert decided.reason.startswith("changed after shipbob shipped it (shipping address changed")


def test_a_new_address_without_a_city_is_held_not_sent() -> None:
    decided = plan(order(("1", "MUG", 2), ("2", "CAP", 1), ship_to=dataclasses.replace(MOVED, city="")))
    assert (decided.action, decided.reason) == (
        order_diff.HOLD,
        "the new shipping address lacks city: not sent to shipbob",
    )


def test_every_line_removed_cancels_at_the_provider() -> None:
    assert plan(order(("1", "MUG", 0), ("2", "CAP", 0))).action == order_diff.CANCEL


def test_an_order_being_cancelled_or_sent_is_left_to_that_job() -> None:
    for state in (states.PUSHING, states.CANCEL_REQUESTED, states.CANCELLED):
        assert plan(order(("1", "MUG", 2)), state=state).action == order_diff.NOTHING
