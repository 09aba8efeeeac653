"""Forged shipments, tried as an attacker would (issue 11, items 2 and 5).

Two shops on the sandbox 3PL, each with its own sandbox account: the victim (A, writing its
tracking to the stand-in shop) and the attacker (B). The whole service runs on a real port; the
sandbox ships nothing by itself here (a one-hour delay), so a parcel exists only where a test
makes one. What must hold: an event counts only when signed by the shop's own provider account
and about the provider order the shop's order was sent as; a delivery naming no reference of
ours is routed by the shop's own URL token in one lookup, never by trying every shop's secret.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sqlalchemy import event, func, select
from standardwebhooks import Webhook

from integrations.errors import RetryableError
from jobs.runtime import set_runtime
from sandbox import faults
from sandbox import jobs as sandbox_jobs
from sandbox.accounts import token_webhook_secret
from sandbox.shop import SANDBOX_LOCATION
from store.db import transaction
from store.models import Order, OrderLine, Shipment, Shop, WebhookEvent
from store.orders import transition
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shipbob import make_secret
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

VICTIM = "victim.myshopify.com"
ATTACKER = "attacker.myshopify.com"
VICTIM_TOKEN = "shpat_victim"
VICTIM_ACCOUNT = "account-a"  # the sandbox accounts' bearer tokens
ATTACKER_ACCOUNT = "account-b"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    # The sandbox would otherwise ship every genuine order at once; here only the tests ship.
    return settings.with_(sandbox_ship_delay=3600)


@pytest.fixture
def service(live):  # type: ignore[no-untyped-def]
    server, runtime = live
    set_runtime(runtime)  # the sandbox's jobs run in this process, as its worker would
    with transaction(runtime.sessions) as session:
        victim = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            VICTIM,
            {"access_token": VICTIM_TOKEN, "sandbox_shop": True},
            "sandbox",
            {"token": VICTIM_ACCOUNT},
            {"location_id": SANDBOX_LOCATION, "hold_tags": ["hold"]},
        )
        attacker = upsert_shop(
            session, runtime.vault, "shopify", ATTACKER, {"access_token": "x"}, "sandbox", {"token": ATTACKER_ACCOUNT}
        )
        ids = victim.id, attacker.id
    return server, runtime, *ids


def deliver(server: Any, shop: str, payload: dict[str, Any]) -> None:
    body = body_of(payload)
    headers = headers_for(shop, "orders/paid", body, SHOPIFY_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200


def victim_order(runtime: Any, platform_order_id: str) -> dict[str, Any]:
    """What the victim's order looks like now: state, provider order, parcels, timeline."""
    with runtime.sessions() as session:
        order = session.scalars(select(Order).where(Order.platform_order_id == platform_order_id)).one()
        return {
            "state": order.state,
            "provider_order_id": order.provider_order_id,
            "reference": order.provider_reference,
            "shipments": [s.provider_shipment_id for s in order.shipments],
            "timeline": [t.reason for t in order.history],
        }


def written_to_victim_shop(runtime: Any, platform_order_id: str) -> int:
    """Fulfilments the stand-in shop holds for the victim's order."""
    return int(runtime.redis.llen(f"relais:sandbox-shop:{VICTIM}:{platform_order_id}"))


def sandbox_event(reference: str | None, provider_order_id: object, topic: str = "order.shipped") -> dict[str, Any]:
    """A sandbox shipment webhook body (the shape ``sandbox.jobs.notify`` sends)."""
    payload: dict[str, Any] = {
        "topic": topic,
        "event_time": datetime.now(UTC).isoformat(),
        "order_id": provider_order_id,
        "shipment": {
            "id": 424242,
            "status": "shipped",
            "carrier": "UPS",
            "service": "UPS Standard",
            "tracking_number": "1Z999AA10123456784",
            "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
            "lines": [{"sku": "IPOD2008GREEN", "quantity": 2}, {"sku": "IPOD2008RED", "quantity": 1}],
        },
    }
    if reference is not None:
        payload["reference"] = reference
    return payload


def post_signed(url: str, payload: dict[str, Any], secret: str) -> requests.Response:
    body = json.dumps(payload)
    headers = sandbox_jobs.signed_headers(secret, f"msg_{uuid.uuid4().hex}", payload["topic"], body)
    return requests.post(url, data=body, headers=headers, timeout=10)


def stored_provider_events(runtime: Any) -> int:
    with runtime.sessions() as session:
        return int(
            session.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.source != "shopify"))
        )


def test_an_order_made_by_another_sandbox_account_under_the_victims_reference_ships_nothing(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, victim_id, _ = service
    deliver(server, VICTIM, paid_order(5001))
    drain(runtime)
    before = victim_order(runtime, "5001")
    assert before["state"] == "pushed" and before["reference"] == f"{victim_id}-5001"

    # Account B creates an order under the victim's reference, and the sandbox ships it.
    forged = {
        "reference": before["reference"],
        "shipping_method": "Standard",
        "recipient": {"name": "Mallory", "address1": "1 rue du Vol", "city": "Paris", "country_code": "FR"},
        "lines": [{"sku": "IPOD2008GREEN", "quantity": 2}, {"sku": "IPOD2008RED", "quantity": 1}],
    }
    created = requests.post(
        f"{server.url}/sandbox/api/orders",
        json=forged,
        headers={"Authorization": f"Bearer {ATTACKER_ACCOUNT}"},
        timeout=10,
    )
    assert created.status_code == 201
    with pytest.raises(RetryableError, match="answered 401"):
        sandbox_jobs.ship_order(created.json()["id"])  # its webhook reaches Relais, signed by account B
    drain(runtime)

    assert victim_order(runtime, "5001") == before
    assert written_to_victim_shop(runtime, "5001") == 0
    assert stored_provider_events(runtime) == 0


def test_an_event_signed_with_another_shops_secret_is_refused_and_nothing_is_stored(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, victim_id, _ = service
    deliver(server, VICTIM, paid_order(5002))
    drain(runtime)
    before = victim_order(runtime, "5002")
    with runtime.sessions() as session:
        token = session.get(Shop, victim_id).webhook_token
    payload = sandbox_event(before["reference"], int(before["provider_order_id"]))
    attackers_secret = token_webhook_secret(runtime.settings, ATTACKER_ACCOUNT)

    bare = f"{server.url}/webhooks/fulfilment/sandbox"
    assert post_signed(bare, payload, attackers_secret).status_code == 401
    assert post_signed(f"{bare}/{token}", payload, attackers_secret).status_code == 401
    assert post_signed(bare, payload, runtime.settings.sandbox_secret).status_code == 401  # the old shared one

    assert stored_provider_events(runtime) == 0
    assert runtime.queue("webhooks").count == 0
    drain(runtime)
    assert victim_order(runtime, "5002") == before


def test_an_event_about_another_provider_order_is_ignored_and_the_timeline_says_why(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _, _ = service
    deliver(server, VICTIM, paid_order(5003))
    drain(runtime)
    before = victim_order(runtime, "5003")
    sent_as = before["provider_order_id"]
    other = int(sent_as) + 1000
    payload = sandbox_event(before["reference"], other)
    secret = token_webhook_secret(runtime.settings, VICTIM_ACCOUNT)  # the victim's own account signs

    assert post_signed(f"{server.url}/webhooks/fulfilment/sandbox", payload, secret).status_code == 200
    drain(runtime)

    after = victim_order(runtime, "5003")
    assert (after["state"], after["shipments"]) == ("pushed", [])
    assert after["timeline"][-1] == (
        f"ignored shipped event for parcel 424242: provider order {other} is not the one this order was sent as "
        f"({sent_as})"
    )
    assert written_to_victim_shop(runtime, "5003") == 0


def test_a_held_order_never_becomes_shipped(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, victim_id, _ = service
    deliver(server, VICTIM, paid_order(5004, tags="hold"))
    drain(runtime)
    assert victim_order(runtime, "5004")["state"] == "held"
    secret = token_webhook_secret(runtime.settings, VICTIM_ACCOUNT)
    url = f"{server.url}/webhooks/fulfilment/sandbox"

    for topic in ("order.shipped", "order.shipment.delivered"):
        assert post_signed(url, sandbox_event(f"{victim_id}-5004", 1, topic), secret).status_code == 200
    drain(runtime)

    after = victim_order(runtime, "5004")
    assert (after["state"], after["shipments"], after["provider_order_id"]) == ("held", [], None)
    assert after["timeline"][-1].endswith("this order was never sent to sandbox (it is held)")
    assert written_to_victim_shop(runtime, "5004") == 0


def test_a_delivery_naming_no_reference_is_routed_by_the_shops_token_in_one_lookup(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, victim_id, _ = service
    deliver(server, VICTIM, paid_order(5005))
    drain(runtime)
    with transaction(runtime.sessions) as session:
        for n in range(40):  # more shops of the same provider: none of them may be tried
            upsert_shop(
                session, runtime.vault, "shopify", f"other-{n}.myshopify.com", {}, "sandbox", {"token": f"o{n}"}
            )
        token = session.get(Shop, victim_id).webhook_token
    pushed = victim_order(runtime, "5005")
    payload = sandbox_event(None, int(pushed["provider_order_id"]))
    secret = token_webhook_secret(runtime.settings, VICTIM_ACCOUNT)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    try:
        refused = post_signed(f"{server.url}/webhooks/fulfilment/sandbox", payload, secret)
        on_bare_url = list(statements)
        statements.clear()
        accepted = post_signed(f"{server.url}/webhooks/fulfilment/sandbox/{token}", payload, secret)
        shop_reads = [s for s in statements if "FROM shops" in s]
    finally:
        event.remove(runtime.engine, "before_cursor_execute", record)

    assert refused.status_code == 400 and "names no order reference" in refused.json()["error"]
    assert on_bare_url == []  # not one shop read, so none decrypted
    assert accepted.status_code == 200
    # One lookup by token; the only other read of shops is the inbox insert naming the one shop found.
    by_token = [s for s in shop_reads if "webhook_token" in s]
    assert len(by_token) == 1
    assert [s for s in shop_reads if s not in by_token and not s.lstrip().upper().startswith("INSERT")] == []
    assert len(shop_reads) <= 2
    drain(runtime)
    assert victim_order(runtime, "5005")["shipments"] == ["424242"]  # found by its provider order id


def test_the_stand_in_shop_refuses_a_wrong_token_and_a_pattern_for_a_shop_name(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _, _ = service
    deliver(server, VICTIM, paid_order(5006))
    drain(runtime)
    fulfilment = {"id": "gid://shopify/Fulfillment/1", "status": "SUCCESS", "trackingInfo": [], "lines": {}}
    runtime.redis.rpush(f"relais:sandbox-shop:{VICTIM}:5006", json.dumps(fulfilment))
    read = {
        "query": "query RelaisOrderFulfilmentState($id: ID!) { order(id: $id) { id } }",
        "variables": {"id": "gid://shopify/Order/5006"},
    }
    update = {
        "query": "mutation RelaisTrackingUpdate($id: ID!, $tracking: FulfillmentTrackingInput!) { x }",
        "variables": {"id": fulfilment["id"], "tracking": {"number": "FORGED", "company": "UPS", "url": ""}},
    }

    def graphql(shop: str, token: str, document: dict[str, Any]) -> requests.Response:
        url = f"{server.url}/sandbox/shopify/{shop}/admin/api/2026-10/graphql.json"
        return requests.post(url, json=document, headers={"X-Shopify-Access-Token": token}, timeout=10)

    assert graphql(VICTIM, "shpat_guess", read).status_code == 401
    assert graphql(VICTIM, "", read).status_code == 401
    assert graphql("*", "shpat_guess", update).status_code == 404
    assert graphql("*.myshopify.com", "shpat_guess", update).status_code == 404
    assert graphql(ATTACKER, "x", update).status_code == 401  # not a stand-in shop: no token works
    (kept,) = runtime.redis.lrange(f"relais:sandbox-shop:{VICTIM}:5006", 0, -1)
    assert json.loads(kept)["trackingInfo"] == []
    answer = graphql(VICTIM, VICTIM_TOKEN, read)
    assert answer.status_code == 200 and answer.json()["data"]["order"]["id"] == "gid://shopify/Order/5006"


def test_a_sandbox_fault_cannot_park_a_server_thread_for_long(service) -> None:  # type: ignore[no-untyped-def]
    server, _, _, _ = service
    url = f"{server.url}/sandbox/api/faults"
    auth = {"Authorization": f"Bearer {ATTACKER_ACCOUNT}"}
    refused = requests.post(url, json={"slow_next": 100, "delay": 30}, headers=auth, timeout=10)
    assert refused.status_code == 422 and "delay" in refused.json()["errors"]
    assert requests.post(url, json={"slow_next": 1, "delay": faults.MAX_DELAY + 0.1}, headers=auth).status_code == 422
    assert faults.MAX_DELAY <= 5
    assert requests.post(url, json={"slow_next": 1, "delay": 0.2}, headers=auth, timeout=10).status_code == 200


def test_a_shipbob_event_about_another_shipbob_order_is_ignored(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _, _ = service
    secret = make_secret()
    options = {"token": "pat", "channel_id": "1", "webhook_secret": secret}
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(session, runtime.vault, "shopify", "sb.myshopify.com", {}, "shipbob", options)
        order = Order(
            shop_id=shop.id,
            platform_order_id="777",
            provider="shipbob",
            provider_reference=f"{shop.id}-777",
            provider_order_id="5001",
            lines=[OrderLine(platform_line_id="1", sku="A", quantity=1, requires_shipping=True)],
        )
        session.add(order)
        transition(order, "pushed", "accepted by shipbob as order 5001")
        reference = order.provider_reference
    body = json.dumps(
        {
            "id": 9999,  # another ShipBob order, carrying our reference
            "reference_id": reference,
            "shipments": [
                {
                    "id": 31,
                    "order_id": 9999,
                    "status": "Completed",
                    "tracking": {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"},
                    "products": [{"reference_id": "A", "quantity": 1}],
                }
            ],
        }
    )
    at = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_sb_1",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_sb_1", at, body),
        "x-webhook-topic": "order.shipped",
        "content-type": "application/json",
    }
    response = requests.post(f"{server.url}/webhooks/fulfilment/shipbob", data=body, headers=headers, timeout=10)
    assert response.status_code == 200
    drain(runtime)
    with runtime.sessions() as session:
        order = session.scalars(select(Order).where(Order.platform_order_id == "777")).one()
        assert order.state == "pushed"
        assert session.scalar(select(func.count()).select_from(Shipment)) == 0
        assert order.history[-1].reason.endswith("provider order 9999 is not the one this order was sent as (5001)")
