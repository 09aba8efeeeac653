"""`orders list` as an operator reads it: a header, one line per order, a plain word when empty."""

from __future__ import annotations

from sqlalchemy import select

from store.db import transaction
from store.models import Order, Shop
from store.shops import upsert_shop


def test_orders_list_says_so_when_there_is_no_order(app) -> None:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(args=["orders", "list"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no orders"


def test_orders_list_prints_a_header_above_its_rows(app, runtime) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(
            session, runtime.vault, "shopify", "list.myshopify.com", {"access_token": "x"}, "sandbox", {}
        )
        session.add(Order(shop_id=shop.id, platform_order_id="42", name="#1042", state="held"))
    result = app.test_cli_runner().invoke(args=["orders", "list"])
    header, row = result.output.splitlines()
    assert header.split() == ["id", "shop", "order", "state", "reference", "reason"]
    assert "#1042" in row and "held" in row


def test_shop_add_prints_the_shops_own_provider_webhook_address(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(
        args=["shop", "add", "shopify", "hook.myshopify.com", "--token", "shpat_x", "--provider", "sandbox"]
    )
    assert result.exit_code == 0, result.output
    with runtime.sessions() as session:
        token = session.scalars(select(Shop.webhook_token)).one()
    assert len(token) >= 20
    assert f"provider webhook URL: {runtime.settings.public_url}/webhooks/fulfilment/sandbox/{token}" in result.output
