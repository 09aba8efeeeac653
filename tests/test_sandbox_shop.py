"""The sandbox shop (a development stand-in for a store's Admin API) closes the demo's loop."""

from __future__ import annotations

import requests
from sqlalchemy import select

from jobs import states
from store.models import Order
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order
from web.sandbox_shop import _fulfilments

SHOP = "dev-store.myshopify.com"


def test_a_sandbox_shop_order_is_pushed_shipped_and_its_tracking_written_back(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    from app import create_app

    runner = create_app(runtime=runtime).test_cli_runner()
    result = runner.invoke(args=["shop", "add", "shopify", SHOP, "--sandbox-shop"])
    assert result.exit_code == 0, result.output
    body = body_of(paid_order(4242))
    response = requests.post(
        f"{server.url}/webhooks/shopify",
        data=body,
        headers=headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET),
        timeout=10,
    )
    assert response.status_code == 200
    drain(runtime)
    with runtime.sessions() as session:
        order = session.scalars(select(Order)).one()
        history = [t.to_state for t in order.history]
        [parcel] = order.shipments
        assert order.state in (states.SHIPPED, states.DELIVERED) and "shipped" in history
    with create_app(runtime=runtime).app_context():
        [fulfilment] = _fulfilments(SHOP, "4242")
    assert fulfilment["trackingInfo"][0]["number"] == parcel.tracking_number
    assert sorted(fulfilment["lines"].values()) == [1, 2]  # the gift card is not in the parcel
