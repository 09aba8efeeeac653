"""The pipeline's decision is a pure function of the order, what we recorded, and the shop's rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from integrations.model import Address, Line, Order
from jobs import states
from jobs.decide import (
    CANCEL_AT_PROVIDER,
    CANCEL_LOCALLY,
    HOLD,
    NOTHING_TO_SHIP,
    PUSH,
    STALE,
    UPDATE,
    WAIT,
    Recorded,
    decide,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ADDRESS = Address(name="Bob Norman", address1="Chestnut Street 92", city="Louisville", country_code="US")


def order(**changes: object) -> Order:
    base = Order(
        platform_order_id="1",
        name="#1",
        paid=True,
        cancelled=False,
        updated_at=T0,
        lines=(Line("10", "SKU-1", 2, True), Line("11", "GIFT", 1, False)),
        ship_to=ADDRESS,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_paid_order_seen_first_is_pushed() -> None:
    assert decide(order(), None, {}).action == PUSH


def test_an_unpaid_order_waits_when_the_shop_pushes_on_payment() -> None:
    d = decide(order(paid=False), None, {"push_on": "paid"})
    assert (d.action, d.state) == (WAIT, states.RECEIVED)


def test_an_unpaid_order_is_pushed_when_the_shop_pushes_on_creation() -> None:
    assert decide(order(paid=False), None, {"push_on": "created"}).action == PUSH


def test_an_order_already_pushed_is_not_pushed_again_whatever_the_topic() -> None:
    for state in (states.READY, states.PUSHING, states.PUSHED, states.SHIPPED, states.FAILED):
        recorded = Recorded(state, T0)
        assert decide(order(updated_at=T0 + timedelta(minutes=1)), recorded, {}).action == UPDATE


def test_an_update_older_than_the_one_applied_is_ignored() -> None:
    recorded = Recorded(states.RECEIVED, T0)
    assert decide(order(updated_at=T0 - timedelta(seconds=1)), recorded, {}).action == STALE


def test_a_cancelled_order_never_pushed_is_cancelled_locally() -> None:
    assert decide(order(cancelled=True), None, {}).action == CANCEL_LOCALLY
    assert decide(order(cancelled=True), Recorded(states.RECEIVED, T0), {}).action == CANCEL_LOCALLY


def test_a_cancelled_order_at_the_provider_is_cancelled_there() -> None:
    for state in (states.PUSHING, states.PUSHED, states.PARTIALLY_SHIPPED):
        d = decide(order(cancelled=True), Recorded(state, T0), {})
        assert (d.action, d.state) == (CANCEL_AT_PROVIDER, states.CANCEL_REQUESTED)


def test_a_cancel_after_full_shipment_is_recorded_as_too_late() -> None:
    d = decide(order(cancelled=True), Recorded(states.SHIPPED, T0), {})
    assert d.state == states.CANCEL_TOO_LATE


def test_an_order_with_only_unshippable_lines_is_not_pushed() -> None:
    d = decide(order(lines=(Line("11", "GIFT", 1, False),)), None, {})
    assert d.action == NOTHING_TO_SHIP


def test_an_order_without_a_shipping_address_is_held() -> None:
    assert decide(order(ship_to=None), None, {}).action == HOLD
