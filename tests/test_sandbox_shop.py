"""The sandbox shop (a development stand-in for a store's Admin API) closes the demo's loop."""

from __future__ import annotations

import requests
from sqlalchemy import select

from jobs import states
from sandbox.shop import _fulfilments
from store.models import Order
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "dev-store.myshopify.com"


def test_a_sandbox_shop_order_is_pushed_shipped_and_its_tracking_written_back(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    from app import create_app

    runner = create_app(runtime=runtime).test_cli_runner()
    result = runner.invoke(args=["shop", "add", "shopify", SHOP, "--sandbox-shop", "--provider", "sandbox"])
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


def test_stock_sync_writes_the_sandbox_warehouses_stock_to_the_sandbox_shop(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    from app import create_app

    app = create_app(runtime=runtime)
    runner = app.test_cli_runner()
    runner.invoke(
        args=[
            "shop",
            "add",
            "shopify",
            SHOP,
            "--sandbox-shop",
            "--provider",
            "sandbox",
            "--provider-option",
            "token=stock-demo",
        ]
    )
    body = body_of(paid_order(4343))
    headers = headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    drain(runtime)
    requests.put(
        f"{server.url}/sandbox/api/inventory/IPOD2008GREEN",
        json={"on_hand": 40},
        headers={"Authorization": "Bearer stock-demo"},
        timeout=10,
    )
    first = runner.invoke(args=["stock", "sync", SHOP])
    assert first.exit_code == 0, first.output
    with app.app_context():
        stock = {k.decode(): int(v) for k, v in runtime.redis.hgetall(f"relais:sandbox-shop:{SHOP}:stock").items()}
    # 40 on hand, less the 2 units of the order pushed minutes ago (the warehouse's count lags)
    assert stock["IPOD2008GREEN"] == 38
    again = runner.invoke(args=["stock", "sync", SHOP])
    assert again.exit_code == 0 and ": 0 written," in again.output  # nothing changed, nothing sent
