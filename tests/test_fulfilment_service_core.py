"""The pure parts of fulfilment-service mode: the decision, the rejection reason, the FO ids a
webhook names."""

from __future__ import annotations

from datetime import UTC, datetime

from integrations.model import Address, Line, Order
from integrations.shopify.fulfilment_orders import ids_in, rejection_reason
from jobs import decide, states


def paid() -> Order:
    return Order(
        platform_order_id="1",
        name="#1",
        paid=True,
        cancelled=False,
        updated_at=datetime(2026, 12, 1, tzinfo=UTC),
        lines=(Line("11", "MUG", 1, True),),
        ship_to=Address(name="Ann", address1="1 Rue", city="Paris", country_code="FR"),
    )


def test_in_service_mode_a_paid_order_waits_for_shopifys_fulfilment_request() -> None:
    decision = decide.decide(paid(), None, {"fulfilment_mode": "service"})
    assert (decision.action, decision.state, decision.reason) == (
        decide.WAIT,
        states.RECEIVED,
        decide.WAITING_FOR_REQUEST,
    )
    assert decide.decide(paid(), None, {"fulfilment_mode": "order_webhooks"}).action == decide.PUSH


def test_in_service_mode_a_released_hold_still_waits_for_the_request() -> None:
    recorded = decide.Recorded(states.HELD, None)
    assert decide.release(paid(), recorded, {"fulfilment_mode": "service"}).action == decide.WAIT


def test_the_providers_refusal_becomes_shopifys_rejection_reason() -> None:
    assert rejection_reason("refused", ["products[0].reference_id"]) == "INVALID_SKU"
    assert rejection_reason("unknown SKU ABC") == "INVALID_SKU"
    assert rejection_reason("refused", ["recipient.address.city"]) == "INCORRECT_ADDRESS"
    assert rejection_reason("not enough inventory") == "INVENTORY_OUT_OF_STOCK"
    assert rejection_reason("the warehouse is closed") == "OTHER"


def test_every_fulfilment_order_a_webhook_names_is_found_once_whatever_its_shape() -> None:
    payload = {
        "original_fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/1", "status": "open"},
        "moved_fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/2"},
        "split_line_items": [{"id": "gid://shopify/FulfillmentOrderLineItem/9"}],
        "remaining": [{"id": "gid://shopify/FulfillmentOrder/1"}, {"id": "gid://shopify/FulfillmentOrder/x"}],
    }
    assert ids_in(payload) == ["gid://shopify/FulfillmentOrder/1", "gid://shopify/FulfillmentOrder/2"]
