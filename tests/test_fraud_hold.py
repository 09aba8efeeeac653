"""The fraud hold acts: a Shopify order's risk assessments are read before it is pushed.

Over real HTTP: signed ``orders/paid`` deliveries into the service on a real port, the sandbox
3PL as provider, and the schema-checked fake Shopify answering ``order.risk`` (its documents are
validated against Shopify's 2026-10 schema before they run).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from jobs import states
from jobs.queues import enqueue_once
from store.db import transaction
from store.merchant_view import held_reason
from store.models import Order, OrderTransition
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "fraud.myshopify.com"
WAREHOUSE = "sandbox-fraud-account"
ORDER_ID = 820982911946154508
ORDER_GID = f"gid://shopify/Order/{ORDER_ID}"
LOCATION = "gid://shopify/Location/1"


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    server = FakeShopifyAdmin("shpat_fraud").start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings, fake):  # type: ignore[no-untyped-def]
    return settings.with_(shopify_admin_url=fake.url + "/{shop}")


def service(live, *, rule: bool = True):  # type: ignore[no-untyped-def]
    server, runtime = live
    with transaction(runtime.sessions) as session:
        upsert_shop(
            session,
            runtime.vault,
            "shopify",
            SHOP,
            {"access_token": "shpat_fraud"},
            "sandbox",
            {"token": WAREHOUSE},
            {"location_id": LOCATION, "hold_high_risk": rule},
        )
    return server, runtime


def deliver(server, topic: str, payload: dict) -> None:  # type: ignore[no-untyped-def]
    body = body_of(payload)
    answer = requests.post(
        f"{server.url}/webhooks/shopify", data=body, headers=headers_for(SHOP, topic, body, SHOPIFY_SECRET), timeout=10
    )
    assert answer.status_code == 200


def provider_orders(server) -> list[dict]:  # type: ignore[no-untyped-def]
    answer = requests.get(
        f"{server.url}/sandbox/api/orders", headers={"Authorization": f"Bearer {WAREHOUSE}"}, timeout=10
    )
    return answer.json()["orders"]


def the_order(runtime) -> Order:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        row = session.scalars(select(Order).where(Order.platform_order_id == str(ORDER_ID))).one()
        _ = row.history
        return row


def timeline(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.reason for t in sorted(the_order(runtime).history, key=lambda t: t.id)]


def risk_changed(level: str) -> dict:  # type: ignore[type-arg]
    """An ``orders/risk_assessment_changed`` body (Shopify's webhook reference sample's fields)."""
    return {
        "provider_id": None,
        "provider_title": None,
        "risk_level": level,
        "order_id": ORDER_ID,
        "created_at": None,
        "admin_graphql_api_order_id": ORDER_GID,
    }


def test_a_high_risk_order_is_held_with_the_reason_and_never_reaches_the_provider(live, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service(live)
    fake.places.set_risk(ORDER_GID, "HIGH", "LOW", facts=("Card declined 4 times before this order",))

    deliver(server, "orders/paid", paid_order(ORDER_ID))
    drain(runtime)

    row = the_order(runtime)
    assert row.state == states.HELD
    assert held_reason(row).startswith("high fraud risk") and "Card declined 4 times" in held_reason(row)
    assert provider_orders(server) == []
    assert fake.places.risk_reads == [ORDER_GID]


def test_a_low_risk_order_is_sent_with_the_assessment_on_its_timeline(live, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service(live)
    fake.places.set_risk(ORDER_GID, "LOW", recommendation="ACCEPT")

    deliver(server, "orders/paid", paid_order(ORDER_ID))
    drain(runtime)

    assert the_order(runtime).state in states.AT_PROVIDER | states.FULLY_SHIPPED
    assert "fraud risk assessed: low" in timeline(runtime)
    assert len(provider_orders(server)) == 1


def test_a_pending_assessment_waits_then_the_risk_webhook_sends_the_order(live, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service(live)
    fake.places.set_risk(ORDER_GID, "PENDING")

    deliver(server, "orders/paid", paid_order(ORDER_ID))
    drain(runtime)

    assert the_order(runtime).state == states.READY
    assert any(r.startswith("waiting for the fraud risk assessment (at most 10 min") for r in timeline(runtime))
    assert provider_orders(server) == []

    fake.places.set_risk(ORDER_GID, "LOW")
    deliver(server, "orders/risk_assessment_changed", risk_changed("low"))
    drain(runtime)

    assert the_order(runtime).state in states.AT_PROVIDER | states.FULLY_SHIPPED
    assert len(provider_orders(server)) == 1
    assert "fraud risk assessed: low" in timeline(runtime)


def test_a_pending_assessment_is_sent_after_the_bound_with_a_note_saying_so(live, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service(live)
    fake.places.set_risk(ORDER_GID, "PENDING")
    deliver(server, "orders/paid", paid_order(ORDER_ID))
    drain(runtime)
    row = the_order(runtime)
    assert row.state == states.READY
    # Eleven minutes pass (the bound is 10): the scheduled re-check comes due.
    with transaction(runtime.sessions) as session:
        waiting = session.scalars(
            select(OrderTransition).where(
                OrderTransition.order_id == row.id, OrderTransition.reason.startswith("waiting for the fraud")
            )
        ).one()
        waiting.at -= timedelta(minutes=11)
    runtime.queue("orders").remove(f"risk-{row.id}-{row.generation}")
    enqueue_once(runtime, "orders", "jobs.fraud.recheck", row.id, job_id=f"risk-{row.id}-{row.generation}-due")
    drain(runtime)

    assert the_order(runtime).state in states.AT_PROVIDER | states.FULLY_SHIPPED
    assert "no fraud risk assessment after 10 min: sent without one" in timeline(runtime)
    assert len(provider_orders(server)) == 1


def test_a_waiting_order_is_not_asked_again_each_time_the_sweep_looks(live, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service(live)
    fake.places.set_risk(ORDER_GID, "PENDING")
    deliver(server, "orders/paid", paid_order(ORDER_ID))
    drain(runtime)
    row = the_order(runtime)

    for attempt in range(3):  # the sweep finds a ready order with no push job and queues one
        enqueue_once(runtime, "orders", "jobs.orders.push_order", row.id, job_id=f"push-{row.id}-sweep-{attempt}")
        drain(runtime)

    assert fake.places.risk_reads == [ORDER_GID]
    assert the_order(runtime).state == states.READY and provider_orders(server) == []


def test_with_the_rule_off_no_risk_is_read_and_the_order_is_sent(live, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service(live, rule=False)
    fake.places.set_risk(ORDER_GID, "HIGH")

    deliver(server, "orders/paid", paid_order(ORDER_ID))
    drain(runtime)

    assert fake.places.risk_reads == []
    assert len(provider_orders(server)) == 1


def test_a_high_assessment_arriving_after_the_push_is_noted_on_the_order(live, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service(live)
    fake.places.set_risk(ORDER_GID, "LOW")
    deliver(server, "orders/paid", paid_order(ORDER_ID))
    drain(runtime)

    fake.places.set_risk(ORDER_GID, "HIGH")
    deliver(server, "orders/risk_assessment_changed", risk_changed("high"))
    drain(runtime)

    assert any(r.startswith("high fraud risk assessed after the order was sent") for r in timeline(runtime))
    assert len(provider_orders(server)) == 1


def test_the_merchant_releasing_a_fraud_hold_sends_the_order_without_asking_again(live, fake) -> None:  # type: ignore[no-untyped-def]
    from jobs import actions

    server, runtime = service(live)
    fake.places.set_risk(ORDER_GID, "HIGH")
    deliver(server, "orders/paid", paid_order(ORDER_ID))
    drain(runtime)
    row = the_order(runtime)

    result = actions.perform(runtime, row.shop_id, row.id, "release", "merchant")
    drain(runtime)

    assert result.ok
    assert fake.places.risk_reads == [ORDER_GID]
    assert len(provider_orders(server)) == 1


def test_a_risk_that_cannot_be_read_holds_the_order_with_the_reason(live, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service(live)  # the fake has no such order: Shopify answers order: null

    deliver(server, "orders/paid", paid_order(ORDER_ID))
    drain(runtime)

    row = the_order(runtime)
    assert row.state == states.HELD
    assert held_reason(row) == f"fraud risk could not be checked: Shopify has no order {ORDER_ID}"
    assert provider_orders(server) == []


def test_an_order_update_does_not_release_a_fraud_hold(live, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service(live)
    fake.places.set_risk(ORDER_GID, "HIGH")
    deliver(server, "orders/paid", paid_order(ORDER_ID))
    drain(runtime)

    deliver(server, "orders/updated", paid_order(ORDER_ID, minutes=5, note="gift wrap please"))
    drain(runtime)

    row = the_order(runtime)
    assert row.state == states.HELD and held_reason(row).startswith("high fraud risk")
    assert provider_orders(server) == []
