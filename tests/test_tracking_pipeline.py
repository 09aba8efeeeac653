"""Parcels reach the shop: sandbox ships → signed webhook → parcel recorded → Shopify fulfilment.

The whole service runs on a real port with the sandbox 3PL; Shopify is the fake GraphQL Admin
(schema-checked, cost-throttled, keeping fulfilment orders and remaining quantities).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from jobs import states
from jobs.tracking import write_shipment
from sandbox.accounts import token_webhook_secret
from sandbox.jobs import signed_headers
from store.db import transaction
from store.models import Order, Shipment
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "tracking.myshopify.com"
TOKEN = "shpat_tracking"
OURS = "gid://shopify/Location/64500000001"
ELSEWHERE = "gid://shopify/Location/64500000002"
ORDER_ID = 820982911946154508
GID = f"gid://shopify/Order/{ORDER_ID}"


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    server = FakeShopifyAdmin(TOKEN, restore_rate=10_000).start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings, fake):  # type: ignore[no-untyped-def]
    return settings.with_(shopify_admin_url=fake.url + "/{shop}")


@pytest.fixture
def service(live):  # type: ignore[no-untyped-def]
    server, runtime = live
    with transaction(runtime.sessions) as session:
        upsert_shop(
            session,
            runtime.vault,
            "shopify",
            SHOP,
            {"access_token": TOKEN},
            "sandbox",
            {"token": "trk"},
            {"location_id": OURS},
        )
    return server, runtime


def shopify_order(fake: FakeShopifyAdmin, lines: list[tuple[str, int, str]], **changes: object) -> dict:
    """The fake's order, as the orders/paid webhook Shopify would send for it."""
    order = fake.add_order(ORDER_ID, lines)
    payload = paid_order(ORDER_ID, **changes)
    payload["line_items"] = [
        {
            "id": int(item.legacy_id),
            "sku": item.sku,
            "name": item.sku,
            "quantity": item.quantity,
            "current_quantity": item.quantity,
            "requires_shipping": True,
            "gift_card": False,
        }
        for item in order.line_items
    ]
    return payload


def deliver(server, payload: dict, topic: str = "orders/paid") -> None:  # type: ignore[no-untyped-def]
    body = body_of(payload)
    headers = headers_for(SHOP, topic, body, SHOPIFY_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200


def order_row(runtime) -> Order:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        row = session.scalars(select(Order).where(Order.platform_order_id == str(ORDER_ID))).one()
        _ = row.history, row.shipments, row.lines
        return row


def test_a_one_parcel_order_becomes_one_fulfilment_with_tracking_and_the_customer_notified(service, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service
    deliver(server, shopify_order(fake, [("IPOD2008GREEN", 2, OURS), ("IPOD2008RED", 1, OURS)]))
    drain(runtime)
    [fulfilment] = fake.state.orders[GID].fulfillments
    row = order_row(runtime)
    [parcel] = row.shipments
    assert fulfilment.tracking[0]["number"] == parcel.tracking_number
    assert fulfilment.tracking[0]["url"] == parcel.tracking_url
    assert fulfilment.notify_customer is True
    assert sorted(fulfilment.lines.values()) == [1, 2]
    assert parcel.platform_fulfilment_id == fulfilment.id
    history = [t.to_state for t in row.history]
    assert "shipped" in history and history.index("pushed") < history.index("shipped")
    assert row.state in (states.SHIPPED, states.DELIVERED)


def test_a_two_parcel_order_becomes_two_fulfilments_with_the_right_lines(service, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service
    payload = shopify_order(fake, [("IPOD2008GREEN", 2, OURS), ("IPOD2008RED", 1, OURS)])
    payload["shipping_address"]["name"] = "Bob split Norman"  # the sandbox ships this in two parcels
    deliver(server, payload)
    drain(runtime)
    order = fake.state.orders[GID]
    assert len(order.fulfillments) == 2
    by_sku = sorted(
        sorted((fo_line_sku(order, line_id), qty) for line_id, qty in f.lines.items()) for f in order.fulfillments
    )
    assert by_sku == [[("IPOD2008GREEN", 2)], [("IPOD2008RED", 1)]]
    row = order_row(runtime)
    history = [t.to_state for t in row.history]
    assert history.index("partially_shipped") < history.index("shipped")
    assert {f.tracking[0]["number"] for f in order.fulfillments} == {s.tracking_number for s in row.shipments}


def fo_line_sku(order, fo_line_id: str) -> str:  # type: ignore[no-untyped-def]
    for fo in order.fulfillment_orders:
        for line in fo.lines:
            if line.id == fo_line_id:
                return line.line_item.sku
    raise AssertionError(fo_line_id)


def test_a_repeated_webhook_and_a_job_run_twice_create_nothing_more(service, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service
    deliver(server, shopify_order(fake, [("IPOD2008GREEN", 2, OURS)]))
    drain(runtime)
    with runtime.sessions() as session:
        shipment = session.scalars(select(Shipment)).one()
    assert write_shipment(shipment.id) == "already written"
    # The answer of the first write was lost: Relais does not know the fulfilment id any more.
    with transaction(runtime.sessions) as session:
        row = session.get(Shipment, shipment.id)
        row.platform_fulfilment_id, row.written_at, row.written_tracking = None, None, None
    assert write_shipment(shipment.id) == "written"
    resend_shipped(server, runtime, shipment.id)  # the provider repeats its webhook under a new id
    drain(runtime)
    assert len(fake.state.orders[GID].fulfillments) == 1


def resend_shipped(  # type: ignore[no-untyped-def]
    server, runtime, shipment_id: int, number: str | None = None, minutes: int = 1, carrier: str | None = None
) -> None:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        row = session.get(Shipment, shipment_id)
        order = session.get(Order, row.order_id)
        payload = {
            "topic": "order.shipment.tracking.updated" if number else "order.shipped",
            "event_time": (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat(),
            "reference": order.provider_reference,
            "order_id": order.provider_order_id,
            "shipment": {
                "id": row.provider_shipment_id,
                "status": "shipped",
                "carrier": row.carrier if carrier is None else carrier,
                "service": row.service,
                "tracking_number": number or row.tracking_number,
                "tracking_url": ""
                if carrier == ""
                else (row.tracking_url.replace(row.tracking_number, number) if number else row.tracking_url),
                "lines": row.lines,
            },
        }
    body = json.dumps(payload)
    secret = token_webhook_secret(runtime.settings, "trk")  # the shop's own sandbox account signs
    headers = signed_headers(secret, f"msg_resend_{minutes}", payload["topic"], body)
    response = requests.post(f"{server.url}/webhooks/fulfilment/sandbox", data=body, headers=headers, timeout=10)
    assert response.status_code == 200


def test_a_tracking_correction_updates_the_existing_fulfilment(service, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service
    deliver(server, shopify_order(fake, [("IPOD2008GREEN", 2, OURS)]))
    drain(runtime)
    with runtime.sessions() as session:
        shipment = session.scalars(select(Shipment)).one()
    resend_shipped(server, runtime, shipment.id, number="1Z999AA10123456784", minutes=5)
    drain(runtime)
    [fulfilment] = fake.state.orders[GID].fulfillments
    assert fulfilment.tracking[0]["number"] == "1Z999AA10123456784"
    assert len(fulfilment.tracking_updates) == 1
    with runtime.sessions() as session:
        assert session.get(Shipment, shipment.id).written_tracking.startswith("1Z999AA10123456784|")


def test_lines_at_another_location_are_not_touched(service, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service
    deliver(server, shopify_order(fake, [("IPOD2008GREEN", 2, OURS), ("POSTER", 1, ELSEWHERE)]))
    drain(runtime)
    order = fake.state.orders[GID]
    [fulfilment] = order.fulfillments
    assert fulfilment.location_id == OURS
    assert [fo_line_sku(order, line_id) for line_id in fulfilment.lines] == ["IPOD2008GREEN"]
    elsewhere = next(fo for fo in order.fulfillment_orders if fo.location_id == ELSEWHERE)
    assert elsewhere.status == "OPEN" and elsewhere.lines[0].remaining == 1
    row = order_row(runtime)
    assert row.state == states.PARTIALLY_SHIPPED  # the poster was never the warehouse's to ship


def test_a_parcel_whose_tracking_job_was_lost_is_written_by_the_sweep(service, fake) -> None:  # type: ignore[no-untyped-def]
    from jobs.maintenance import sweep

    server, runtime = service
    unreachable = runtime.settings.with_(shopify_admin_url="http://127.0.0.1:9/{shop}", push_max_retries=0)
    object.__setattr__(runtime, "settings", unreachable)
    deliver(server, shopify_order(fake, [("IPOD2008GREEN", 2, OURS)]))
    drain(runtime)  # Shopify unreachable: the tracking job keeps failing and is given up on
    assert fake.state.orders[GID].fulfillments == []
    runtime.redis.flushdb()  # and then its jobs are lost altogether
    object.__setattr__(runtime, "settings", runtime.settings.with_(shopify_admin_url=fake.url + "/{shop}"))
    assert sweep(older_than_seconds=0)["tracking"] == 1
    drain(runtime)
    assert len(fake.state.orders[GID].fulfillments) == 1


def test_a_parcel_without_carrier_gets_one_guessed_from_its_number_and_the_timeline_says_so(service, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service
    deliver(server, shopify_order(fake, [("IPOD2008GREEN", 2, OURS)]))
    drain(runtime)
    with transaction(runtime.sessions) as session:
        shipment = session.scalars(select(Shipment)).one()
        shipment.carrier = ""  # as if the provider had never named one
    resend_shipped(server, runtime, shipment.id, number="1Z999AA10123456784", minutes=5, carrier="")
    drain(runtime)
    [fulfilment] = fake.state.orders[GID].fulfillments
    assert fulfilment.tracking[0]["company"] == "UPS"
    assert fulfilment.tracking[0]["url"].startswith("https://www.ups.com/")
    with runtime.sessions() as session:
        reasons = [t.reason for t in session.scalars(select(Order)).one().history]
    assert any("guessed" in r and "UPS" in r for r in reasons)
