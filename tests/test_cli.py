"""Operator commands, run through Flask's CLI runner against the real database and Redis."""

from __future__ import annotations

from sqlalchemy import select

from store.models import Shop, WebhookEvent
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order


def test_shop_add_registers_a_shop_with_its_provider_options_encrypted(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(
        args=[
            "shop",
            "add",
            "shopify",
            "Example.myshopify.com",
            "--token",
            "shpat_abc",
            "--provider",
            "shipbob",
            "--provider-option",
            "token=pat-1",
            "--provider-option",
            "channel_id=42",
            "--provider-option",
            "webhook_secret=whsec_c2VjcmV0",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "example.myshopify.com → shipbob" in result.output
    with runtime.sessions() as session:
        shop = session.scalars(select(Shop)).one()
        assert runtime.vault.open(shop.provider_options_enc)["channel_id"] == "42"
    listing = app.test_cli_runner().invoke(args=["shop", "list"])
    assert "example.myshopify.com" in listing.output and "shpat_abc" not in listing.output


def test_shop_add_refuses_a_provider_without_its_required_options(app) -> None:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(args=["shop", "add", "shopify", "x.myshopify.com", "--provider", "shipbob"])
    assert result.exit_code != 0
    assert "token" in result.output


def test_orders_show_and_events_replay(app, client, runtime) -> None:  # type: ignore[no-untyped-def]
    runner = app.test_cli_runner()
    runner.invoke(
        args=[
            "shop",
            "add",
            "shopify",
            "cli.myshopify.com",
            "--token",
            "shpat_x",
            "--provider",
            "sandbox",
            "--setting",
            "push_on=created",
        ]
    )
    payload = paid_order(123456789, financial_status="pending")
    payload["shipping_address"] = None
    body = body_of(payload)
    client.post(
        "/webhooks/shopify", data=body, headers=headers_for("cli.myshopify.com", "orders/create", body, SHOPIFY_SECRET)
    )
    drain(runtime)
    shown = runner.invoke(args=["orders", "show", "123456789"])
    assert shown.exit_code == 0, shown.output
    assert "held" in shown.output and "shipping address is missing" in shown.output
    assert "2 × IPOD2008GREEN" in shown.output
    with runtime.sessions() as session:
        event_id = session.scalars(select(WebhookEvent.id)).one()
    replayed = runner.invoke(args=["events", "replay", str(event_id)])
    assert f"replaying 1 event(s): {event_id}" in replayed.output
    drain(runtime)
    with runtime.sessions() as session:
        assert session.get(WebhookEvent, event_id).status == "processed"
