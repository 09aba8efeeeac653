"""The whole loop over real HTTP: signed Shopify webhook → inbox → job → sandbox provider → shipped.

The service runs on a real port (``live``); the sandbox fulfilment centre is its own HTTP API,
and its signed shipment webhooks come back over HTTP, exactly as in production.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select

from jobs import states
from sandbox.shop import SANDBOX_LOCATION
from store.db import transaction
from store.models import FulfilmentAttempt, Order
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "example.myshopify.com"
TOKEN = "sandbox-test-account"


def add_shop(runtime, session):  # type: ignore[no-untyped-def]
    # The sandbox shop stands in for the store, so parcels are written back to it too.
    credentials = {"access_token": "shpat_x", "sandbox_shop": True}
    return upsert_shop(
        session,
        runtime.vault,
        "shopify",
        SHOP,
        credentials,
        "sandbox",
        {"token": TOKEN},
        {"location_id": SANDBOX_LOCATION},
    )


@pytest.fixture
def service(live):  # type: ignore[no-untyped-def]
    server, runtime = live
    with transaction(runtime.sessions) as session:
        shop_id = add_shop(runtime, session).id
    return server, runtime, shop_id


def deliver(server, topic: str, payload: dict, webhook_id: str | None = None) -> int:  # type: ignore[no-untyped-def]
    body = body_of(payload)
    response = requests.post(
        f"{server.url}/webhooks/shopify",
        data=body,
        headers=headers_for(SHOP, topic, body, SHOPIFY_SECRET, webhook_id),
        timeout=10,
    )
    return response.status_code


def sandbox(server, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
    return requests.request(
        method, f"{server.url}/sandbox/api{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10, **kwargs
    )


def provider_orders(server) -> list[dict]:  # type: ignore[no-untyped-def]
    return sandbox(server, "GET", "/orders").json()["orders"]


def order_row(runtime, platform_id: str = "1001") -> Order:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        row = session.scalars(select(Order).where(Order.platform_order_id == platform_id)).one()
        _ = row.history, row.attempts, row.shipments, row.lines
        return row


def test_a_signed_orders_paid_gives_one_provider_order_with_the_right_lines_and_address(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    assert deliver(server, "orders/paid", paid_order(820982911946154508)) == 200
    drain(runtime)
    [sent] = provider_orders(server)
    assert sent["reference"] == f"{shop_id}-820982911946154508"
    assert sorted((line["sku"], line["quantity"]) for line in sent["lines"]) == [
        ("IPOD2008GREEN", 2),
        ("IPOD2008RED", 1),
    ]
    assert sent["recipient"]["city"] == "Louisville" and sent["recipient"]["country_code"] == "US"
    assert sent["recipient"]["address1"] == "Chestnut Street 92"


def test_the_order_ships_and_its_parcel_and_tracking_are_recorded(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    deliver(server, "orders/paid", paid_order(1001))
    drain(runtime)
    row = order_row(runtime)
    [parcel] = row.shipments
    assert parcel.tracking_number and parcel.carrier and parcel.tracking_url.startswith("https://")
    moves = [t.to_state for t in row.history if t.from_state != t.to_state]  # notes keep the state
    assert moves[:5] == ["received", "ready", "pushing", "pushed", "shipped"]
    assert any("shipped by the provider" in t.reason for t in row.history)
    assert parcel.written_at is not None
    assert row.state in (states.SHIPPED, states.DELIVERED)  # the sandbox delivers right after, at delay 0


def test_the_same_delivery_five_times_gives_one_provider_order(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    for _ in range(5):
        assert deliver(server, "orders/paid", paid_order(2002), webhook_id="same-delivery-id") == 200
    drain(runtime)
    assert len(provider_orders(server)) == 1


@pytest.mark.parametrize("arrival", list(itertools.permutations(["orders/create", "orders/paid", "orders/updated"])))
def test_create_paid_and_updated_in_any_order_give_one_provider_order(service, arrival) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    versions = {
        "orders/create": paid_order(3003, minutes=0, financial_status="pending"),
        "orders/paid": paid_order(3003, minutes=1),
        "orders/updated": paid_order(3003, minutes=2, tags="vip"),
    }
    for topic in arrival:
        assert deliver(server, topic, versions[topic]) == 200
        drain(runtime)
    assert len(provider_orders(server)) == 1
    row = order_row(runtime, "3003")
    assert row.state in (states.PUSHED, states.SHIPPED, states.DELIVERED)
    assert row.platform_updated_at is not None


def test_concurrent_deliveries_of_one_order_still_give_one_provider_order(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    for minutes, topic in enumerate(["orders/paid", "orders/updated", "orders/updated", "orders/create"]):
        deliver(server, topic, paid_order(3004, minutes=minutes))
    drain(runtime)  # all four events queued before any ran
    assert len(provider_orders(server)) == 1


def test_provider_500_twice_then_success_pushes_once_on_the_third_try(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    sandbox(server, "POST", "/faults", json={"fail_next": 2, "status": 500})
    deliver(server, "orders/paid", paid_order(4004))
    drain(runtime)
    assert len(provider_orders(server)) == 1
    row = order_row(runtime, "4004")
    assert [a.outcome for a in row.attempts if a.action == "create"] == ["retryable", "retryable", "ok"]
    assert "pushed" in [t.to_state for t in row.history]


def test_a_429_is_retried_no_sooner_than_the_retry_after(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    sandbox(server, "POST", "/faults", json={"fail_next": 1, "status": 429, "retry_after": 2})
    deliver(server, "orders/paid", paid_order(5005))
    drain(runtime)
    row = order_row(runtime, "5005")
    creates = [a for a in row.attempts if a.action == "create"]
    assert [a.outcome for a in creates] == ["retryable", "ok"]
    waited = (creates[1].at - creates[0].at).total_seconds()
    assert waited >= 2.0
    assert len(provider_orders(server)) == 1


def test_an_invalid_order_fails_at_once_with_the_providers_reason(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    payload = paid_order(6006)
    payload["shipping_address"]["country_code"] = "France"  # the provider wants ISO alpha-2
    deliver(server, "orders/paid", payload)
    drain(runtime)
    row = order_row(runtime, "6006")
    assert row.state == states.FAILED
    assert "country_code" in (row.failure_reason or "")
    assert [a.outcome for a in row.attempts] == ["invalid"]
    assert provider_orders(server) == []


def test_retries_exhausted_leave_the_order_failed_not_dropped(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    sandbox(server, "POST", "/faults", json={"fail_next": 50, "status": 503})
    deliver(server, "orders/paid", paid_order(6007))
    drain(runtime)
    row = order_row(runtime, "6007")
    assert row.state == states.FAILED
    assert "after 5 attempts" in (row.failure_reason or "")
    sandbox(server, "POST", "/faults", json={"fail_next": 0})


def test_an_order_cancelled_before_push_is_never_pushed(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    deliver(server, "orders/create", paid_order(7007, financial_status="pending"))
    drain(runtime)
    cancelled_at = datetime(2026, 11, 20, 10, 5, tzinfo=UTC).isoformat()
    deliver(
        server, "orders/cancelled", paid_order(7007, minutes=5, cancelled_at=cancelled_at, financial_status="voided")
    )
    drain(runtime)
    deliver(server, "orders/paid", paid_order(7007, minutes=1))  # a late, older delivery
    drain(runtime)
    assert provider_orders(server) == []
    assert order_row(runtime, "7007").state == states.CANCELLED


@pytest.fixture
def slow_ship(live):  # type: ignore[no-untyped-def]
    return live


def test_an_order_cancelled_after_push_is_cancelled_at_the_provider(live, settings) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    object.__setattr__(runtime, "settings", runtime.settings.with_(sandbox_ship_delay=3600))  # it will not ship
    with transaction(runtime.sessions) as session:
        add_shop(runtime, session)
    deliver(server, "orders/paid", paid_order(8008))
    drain(runtime)
    assert order_row(runtime, "8008").state == states.PUSHED
    cancelled_at = datetime(2026, 11, 20, 10, 5, tzinfo=UTC).isoformat()
    deliver(server, "orders/cancelled", paid_order(8008, minutes=5, cancelled_at=cancelled_at))
    drain(runtime)
    row = order_row(runtime, "8008")
    assert row.state == states.CANCELLED
    [sent] = provider_orders(server)
    assert sandbox(server, "GET", f"/orders/{sent['id']}").json()["status"] == "cancelled"
    with runtime.sessions() as session:
        outcomes = session.scalars(select(FulfilmentAttempt.outcome).where(FulfilmentAttempt.action == "cancel")).all()
    assert outcomes == ["cancelled"]


def test_a_cancel_after_shipping_is_recorded_as_too_late(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    deliver(server, "orders/paid", paid_order(9009))
    drain(runtime)
    cancelled_at = datetime(2026, 11, 20, 10, 5, tzinfo=UTC).isoformat()
    deliver(server, "orders/cancelled", paid_order(9009, minutes=5, cancelled_at=cancelled_at))
    drain(runtime)
    assert order_row(runtime, "9009").state == states.CANCEL_TOO_LATE


def test_an_uninstalled_shop_gets_nothing_pushed(service) -> None:  # type: ignore[no-untyped-def]
    from store.models import Shop

    server, runtime, shop_id = service
    with transaction(runtime.sessions) as session:
        session.get(Shop, shop_id).status = "uninstalled"
    assert deliver(server, "orders/paid", paid_order(9010)) == 200
    drain(runtime)
    assert provider_orders(server) == []
