"""Uninstall and the privacy topics, over real HTTP: signed deliveries in, the pipeline, the sandbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select, text

from jobs import states
from store.app_models import AuditEntry, DataExport
from store.installs import credentials
from store.models import Base, FulfilmentAttempt, Order, Shop, WebhookEvent
from tests.app_support import SHOP, app_settings, deliver, fake_shopify, install
from tests.conftest import drain
from tests.fakes.shopify_webhooks import paid_order

OTHER = "other-shop.myshopify.com"


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    return app_settings(settings, shopify)


@pytest.fixture
def service(live, shopify):  # type: ignore[no-untyped-def]
    server, runtime = live
    return server, runtime, install(runtime, shopify)


def sandbox_orders(server) -> list:  # type: ignore[no-untyped-def]
    answer = requests.get(
        f"{server.url}/sandbox/api/orders", headers={"Authorization": "Bearer sandbox-app-test"}, timeout=5
    )
    return answer.json()["orders"]


def shop_row(runtime, shop_id: int) -> Shop | None:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.get(Shop, shop_id)


def test_after_uninstall_a_webhook_for_the_shop_pushes_nothing(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    assert deliver(server.url, "app/uninstalled", {"id": 1, "myshopify_domain": SHOP}) == 200
    drain(runtime)
    shop = shop_row(runtime, shop_id)
    assert shop.status == "uninstalled" and shop.credentials_enc is None  # token forgotten
    assert deliver(server.url, "orders/paid", paid_order(5001)) == 200
    drain(runtime)
    assert sandbox_orders(server) == []
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0
        last = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id.desc())).first()
        assert (last.status, last.error) == ("ignored", "shop is uninstalled")
        kinds = session.scalars(select(AuditEntry.kind).where(AuditEntry.shop_id == shop_id)).all()
    assert "uninstalled" in kinds


def test_a_push_queued_before_the_uninstall_becomes_a_no_op(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    assert deliver(server.url, "orders/paid", paid_order(5002)) == 200
    assert deliver(server.url, "app/uninstalled", {"id": 1, "myshopify_domain": SHOP}) == 200
    # Both deliveries are queued; the order's push is enqueued by the first and runs after the uninstall.
    drain(runtime)
    assert sandbox_orders(server) == []
    with runtime.sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.state == states.READY  # decided, never sent
        assert session.scalar(select(func.count()).select_from(FulfilmentAttempt)) == 0
    assert runtime.queue("orders").count == 0


def test_an_uninstall_older_than_a_reinstall_is_ignored(service, shopify) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    deliver(server.url, "app/uninstalled", {"id": 1}, **{"X-Shopify-Triggered-At": earlier})
    drain(runtime)
    shop = shop_row(runtime, shop_id)
    assert shop.status == "active" and credentials(runtime.vault, shop)["access_token"]


def test_shop_redact_leaves_no_row_of_that_shop(service, shopify) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    other_id = install(runtime, shopify, OTHER, provider_token="other-account")
    deliver(server.url, "orders/paid", paid_order(6001))
    deliver(server.url, "orders/paid", paid_order(6002), shop=OTHER)
    deliver(server.url, "customers/data_request", {"customer": {"id": 1, "email": "bob.norman@mail.example.com"}})
    drain(runtime)
    deliver(server.url, "app/uninstalled", {"id": 1})
    drain(runtime)
    assert deliver(server.url, "shop/redact", {"shop_id": 1, "shop_domain": SHOP}) == 200
    drain(runtime)
    with runtime.engine.connect() as conn:
        left = {
            table.name: conn.execute(
                text(f"SELECT count(*) FROM {table.name} WHERE shop_id = :id"),  # noqa: S608 - names from metadata
                {"id": shop_id},
            ).scalar()
            for table in Base.metadata.sorted_tables
            if "shop_id" in table.c
        }
        assert conn.execute(text("SELECT count(*) FROM shops WHERE id = :id"), {"id": shop_id}).scalar() == 0
    assert {name: n for name, n in left.items() if n} == {}
    assert "data_exports" in left and "orders" in left and "audit_log" in left
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Order).where(Order.shop_id == other_id)) == 1
        record = session.scalars(select(AuditEntry).where(AuditEntry.kind == "shop_redact")).one()
        assert (record.shop_id, record.shop_domain) == (None, SHOP)


def test_customers_redact_anonymises_that_customers_orders_and_deliveries(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    deliver(server.url, "orders/paid", paid_order(7001, email="ann@example.com"))
    deliver(server.url, "orders/paid", paid_order(7002, email="zoe@example.com"))
    drain(runtime)
    payload = {"customer": {"id": 9, "email": "ann@example.com", "phone": None}, "orders_to_redact": [7001]}
    assert deliver(server.url, "customers/redact", payload) == 200
    drain(runtime)
    with runtime.sessions() as session:
        ann, zoe = (session.scalars(select(Order).where(Order.platform_order_id == i)).one() for i in ("7001", "7002"))
        assert ann.contact == {"email": "", "phone": ""}
        assert ann.ship_to["address1"] == "" and ann.ship_to["name"] == "" and ann.ship_to["country_code"] == "US"
        assert zoe.contact["email"] == "zoe@example.com" and zoe.ship_to["address1"]
        bodies = [e.body for e in session.scalars(select(WebhookEvent).where(WebhookEvent.shop_id == shop_id))]
    assert not any(b"ann@example.com" in body for body in bodies)  # the request itself is scrubbed too
    assert sum(b"zoe@example.com" in body for body in bodies) == 1
    assert any(json.loads(body) == {"id": "7001", "redacted": True} for body in bodies)


def test_customers_data_request_gathers_the_customers_orders_for_the_merchant(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    deliver(server.url, "orders/paid", paid_order(8001, email="ann@example.com"))
    deliver(server.url, "orders/paid", paid_order(8002, email="zoe@example.com"))
    drain(runtime)
    payload = {
        "customer": {"id": 9, "email": "ann@example.com", "phone": None},
        "orders_requested": [8001],
        "data_request": {"id": 555},
    }
    assert deliver(server.url, "customers/data_request", payload) == 200
    drain(runtime)
    with runtime.sessions() as session:
        export = session.scalars(select(DataExport).where(DataExport.shop_id == shop_id)).one()
        assert export.request_id == "555"
        assert [o["platform_order_id"] for o in export.data["orders"]] == ["8001"]
        assert export.data["orders"][0]["ship_to"]["city"] == "Louisville"
        kinds = session.scalars(select(AuditEntry.kind).where(AuditEntry.shop_id == shop_id)).all()
    assert "customers_data_request" in kinds


def test_a_compliance_delivery_with_a_bad_signature_is_refused_with_401(service) -> None:  # type: ignore[no-untyped-def]
    server, _, _ = service
    answer = requests.post(
        f"{server.url}/webhooks/shopify",
        data=b'{"shop_domain": "relais-test.myshopify.com"}',
        headers={
            "X-Shopify-Topic": "shop/redact",
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": "x",
            "X-Shopify-Hmac-Sha256": "bad",
        },
        timeout=5,
    )
    assert answer.status_code == 401
