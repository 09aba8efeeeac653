"""WooCommerce order payload → the neutral order: status mapped so the pure decision works unchanged."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from integrations.woocommerce.orders import parse_order
from jobs import decide, states
from sandbox.woocommerce import state as woocommerce_state


def sample(**changes: object) -> dict:
    """WooCommerce's documented order (vendor/samples), with changes."""
    payload = woocommerce_state.sample("order_retrieve_v3.json")
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("processing", decide.PUSH),
        ("pending", decide.WAIT),
        ("on-hold", decide.WAIT),
        ("failed", decide.WAIT),
        ("checkout-draft", decide.WAIT),
        ("completed", decide.WAIT),  # the merchant's own completion is not a request to ship
        ("shipped", decide.WAIT),  # a plugin's custom status: do nothing
        ("cancelled", decide.CANCEL_LOCALLY),
        ("refunded", decide.CANCEL_LOCALLY),
        ("trash", decide.CANCEL_LOCALLY),
    ],
)
def test_the_decision_follows_the_status(status: str, action: str) -> None:
    order = parse_order(sample(status=status))
    assert decide.decide(order, None, {"push_on": "paid"}).action == action


def test_a_cancellation_after_push_cancels_at_the_provider() -> None:
    pushed = decide.Recorded(states.PUSHED, None)
    assert decide.decide(parse_order(sample(status="cancelled")), pushed, {}).action == decide.CANCEL_AT_PROVIDER


def test_the_sample_order_becomes_the_neutral_order() -> None:
    order = parse_order(sample())
    assert order.platform_order_id == "727" and order.name == "#727" and order.paid and not order.cancelled
    assert order.updated_at.isoformat() == "2017-03-22T19:28:08+00:00"  # date_modified_gmt, as UTC
    assert [(line.sku, line.quantity) for line in order.lines] == [("", 2), ("Bar3", 1)]
    assert order.lines[1].name == "Ship Your Idea – Color: Black, Size: M Test"  # &ndash; decoded
    assert order.ship_to.address1 == "969 Market" and order.ship_to.country_code == "US"
    assert order.ship_to.phone == "(555) 555-5555"  # shipping has no phone: the billing one
    assert order.contact.email == "john.doe@example.com"
    assert order.shipping_method == "Flat Rate"


def test_non_shippable_ids_pickup_and_lost_skus() -> None:
    order = parse_order(sample(), non_shippable={"93"}, sku_by_id={"93": "WOO-SINGLE"})
    assert [(line.sku, line.requires_shipping) for line in order.lines] == [("WOO-SINGLE", False), ("Bar3", True)]
    pickup = parse_order(sample(shipping_lines=[{"method_id": "local_pickup", "method_title": "Pickup"}]))
    assert pickup.shippable_lines == ()


def test_an_order_without_a_shipping_address_is_held() -> None:
    order = parse_order(sample(shipping={"first_name": "", "address_1": "", "city": "", "country": ""}))
    assert order.ship_to is None
    assert decide.decide(order, None, {}).action == decide.HOLD


def test_a_payload_without_dates_or_lines_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_order(sample(date_modified_gmt=None, date_created_gmt=None))
    with pytest.raises(ValidationError):
        parse_order({k: v for k, v in sample().items() if k != "line_items"})
