"""A WooCommerce partial refund after the push: the refunded units are taken off the order at the
provider (the sandbox 3PL edits its lines in place) or, once the parcel left, held with the reason."""

from __future__ import annotations

import pytest

from integrations.woocommerce.refunds import net_of_refunds
from jobs import states
from tests.conftest import drain
from tests.woocommerce.conftest import register


@pytest.fixture
def settings(settings, request):  # type: ignore[no-untyped-def]
    if request.node.get_closest_marker("slow_warehouse"):
        return settings.with_(sandbox_ship_delay=3600)
    return settings


def timeline(service, oid: int) -> list[str]:  # type: ignore[no-untyped-def]
    with service.runtime.sessions() as session:
        from sqlalchemy import select

        from store.models import Order

        row = session.scalars(select(Order).where(Order.platform_order_id == str(oid))).one()
        return [t.reason for t in row.history]


@pytest.mark.slow_warehouse
def test_a_partial_refund_after_push_takes_the_refunded_units_off_the_provider_order(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    oid = woo.state.create_order([("TSHIRT-M", 2), ("MUG", 1)])
    woo.deliver()
    drain(service.runtime)
    [sent] = service.provider_orders()
    assert [(ln["sku"], ln["quantity"]) for ln in sent["lines"]] == [("TSHIRT-M", 2), ("MUG", 1)]
    woo.state.refund(oid, {"MUG": 1, "TSHIRT-M": 1}, reason="damaged in the photo")
    woo.deliver()
    drain(service.runtime)
    [live] = service.provider_orders()
    assert live["id"] == sent["id"] and live["reference"] == f"{service.shop_id}-{oid}"
    assert [(ln["sku"], ln["quantity"]) for ln in live["lines"]] == [("TSHIRT-M", 1)]
    assert [[(p["sku"], p["quantity"]) for p in s["lines"]] for s in live["shipments"]] == [[("TSHIRT-M", 1)]]
    assert service.order(oid).state == states.PUSHED
    assert "edit applied at sandbox: line TSHIRT-M quantity 2 → 1; line MUG removed (was 1)" in timeline(service, oid)
    woo.state.fire("order.updated", oid)  # the same state again: nothing more is sent
    woo.deliver()
    drain(service.runtime)
    assert sum("edit applied" in r for r in timeline(service, oid)) == 1


def test_a_partial_refund_after_the_parcel_left_is_held_with_the_reason(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    oid = woo.state.create_order([("TSHIRT-M", 2), ("MUG", 1)])
    woo.deliver()
    drain(service.runtime)
    assert service.order(oid).state in (states.SHIPPED, states.DELIVERED)
    woo.state.refund(oid, {"MUG": 1})
    woo.deliver()
    drain(service.runtime)
    [live] = service.provider_orders()
    assert [(ln["sku"], ln["quantity"]) for ln in live["lines"]] == [("TSHIRT-M", 2), ("MUG", 1)]
    held = [r for r in timeline(service, oid) if r.startswith("edit held for the merchant")]
    assert held == [
        "edit held for the merchant: changed after sandbox shipped it (line MUG removed (was 1)): "
        "not applied, check with the customer"
    ]


def test_a_refund_line_names_the_order_line_it_refunds_when_the_store_says() -> None:
    payload = {
        "line_items": [
            {"id": 11, "product_id": 5, "variation_id": 0, "quantity": 2},
            {"id": 12, "product_id": 5, "variation_id": 0, "quantity": 3},
        ]
    }
    by_meta = [
        {"line_items": [{"product_id": 5, "quantity": -2, "meta_data": [{"key": "_refunded_item_id", "value": "12"}]}]}
    ]
    by_product = [{"line_items": [{"product_id": 5, "variation_id": 0, "quantity": -3}]}]
    assert [li["quantity"] for li in net_of_refunds(payload, by_meta)["line_items"]] == [2, 1]
    assert [li["quantity"] for li in net_of_refunds(payload, by_product)["line_items"]] == [0, 2]
    assert [li["quantity"] for li in payload["line_items"]] == [2, 3]  # the payload itself is left alone
