"""Shopify fulfilment-service mode, end to end: the service on a real port, ShipBob's fake as the
provider, Shopify's fake GraphQL Admin (every document validated against the 2026-10 schema)
holding fulfilment orders per location and the request handshake."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select

from integrations.shopify.webhooks import sign
from jobs import states
from jobs.fulfilment_service import ensure_now, poll_all
from store.db import transaction
from store.fulfilment_service_models import FulfilmentService
from store.models import Order, Shop
from store.shops import upsert_shop
from store.sync_models import ShopSync
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shipbob import FakeShipBob, make_secret
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_fulfilment import FakeFO, FakeFOLine
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "fservice.myshopify.com"
TOKEN = "shpat_fservice"
OWN = "gid://shopify/Location/64500000001"  # the merchant's own shop location
ORDER_ID = 820982911946154508
SECRET = make_secret()


@pytest.fixture
def shopify() -> Iterator[FakeShopifyAdmin]:
    fake = FakeShopifyAdmin(TOKEN, restore_rate=10_000).start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings, shipbob, shopify):  # type: ignore[no-untyped-def]
    return settings.with_(shipbob_api_url=shipbob.url, shopify_admin_url=shopify.url + "/{shop}")


def _add_shop(runtime, shipbob: FakeShipBob, mode: str = "service") -> int:  # type: ignore[no-untyped-def]
    options = {"token": shipbob.token, "channel_id": str(shipbob.channel_id), "webhook_secret": SECRET}
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            SHOP,
            {"access_token": TOKEN},
            "shipbob",
            options,
            {"fulfilment_mode": mode},
        )
        return shop.id


@pytest.fixture
def service(live, shipbob):  # type: ignore[no-untyped-def]
    server, runtime = live
    shop_id = _add_shop(runtime, shipbob)
    ensure_now(runtime, shop_id)
    return server, runtime, shop_id


def our_location(runtime) -> str:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.scalars(select(FulfilmentService)).one().location_id


def deliver(server, payload: dict, topic: str) -> None:  # type: ignore[no-untyped-def]
    body = body_of(payload)
    headers = headers_for(SHOP, topic, body, SHOPIFY_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200


def order_payload(order) -> dict:  # type: ignore[no-untyped-def]
    """The order's webhook body, its lines those the fake shop holds."""
    payload = paid_order(ORDER_ID)
    payload["line_items"] = [
        {
            "id": int(li.legacy_id),
            "sku": li.sku,
            "name": li.sku,
            "quantity": li.quantity,
            "current_quantity": li.quantity,
            "requires_shipping": True,
            "gift_card": False,
        }
        for li in order.line_items
    ]
    return payload


def two_location_order(server, runtime, shopify: FakeShopifyAdmin, ours_sku: str = "IPOD2008GREEN"):  # type: ignore[no-untyped-def]
    """One line at the merchant's own location, one at our service's; the paid webhook arrives."""
    order = shopify.add_order(ORDER_ID, [("OWN-MUG", 1, OWN), (ours_sku, 2, our_location(runtime))])
    payload = order_payload(order)
    deliver(server, payload, "orders/paid")
    drain(runtime)
    [own_fo] = [fo for fo in order.fulfillment_orders if fo.location_id == OWN]
    [our_fo] = [fo for fo in order.fulfillment_orders if fo.location_id != OWN]
    return order, own_fo, our_fo


def request_fulfilment(server, shopify: FakeShopifyAdmin, fo_id: str, webhook: bool = True) -> None:  # type: ignore[no-untyped-def]
    with shopify._lock:
        shopify.services.request_fulfilment(fo_id)
    if webhook:
        payload = {
            "original_fulfillment_order": {"id": fo_id, "status": "open", "request_status": "unsubmitted"},
            "submitted_fulfillment_order": {"id": fo_id, "status": "open", "request_status": "submitted"},
            "fulfillment_order_merchant_request": {"id": "gid://shopify/FulfillmentOrderMerchantRequest/1"},
        }
        deliver(server, payload, "fulfillment_orders/fulfillment_request_submitted")


def request_cancellation(server, shopify: FakeShopifyAdmin, fo_id: str) -> None:  # type: ignore[no-untyped-def]
    with shopify._lock:
        shopify.services.request_cancellation(fo_id)
    payload = {"fulfillment_order": {"id": fo_id, "status": "in_progress", "request_status": "cancellation_requested"}}
    deliver(server, payload, "fulfillment_orders/cancellation_request_submitted")


def order_row(runtime) -> Order:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        row = session.scalars(select(Order).where(Order.platform_order_id == str(ORDER_ID))).one()
        _ = row.history, row.lines, row.shipments
        return row


def timeline(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.reason for t in order_row(runtime).history]


def test_an_order_in_service_mode_waits_for_the_fulfilment_request_before_anything_is_pushed(
    service, shopify, shipbob
) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    two_location_order(server, runtime, shopify)
    assert shipbob.state.orders == {}
    assert order_row(runtime).state == states.RECEIVED


def test_a_two_location_order_sends_only_our_line_and_fulfils_only_our_fulfilment_order(
    service, shopify, shipbob
) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    order, own_fo, our_fo = two_location_order(server, runtime, shopify)
    request_fulfilment(server, shopify, our_fo.id)
    drain(runtime)
    [sent] = shipbob.state.orders.values()
    assert [(p["reference_id"], p["quantity"]) for p in sent["products"]] == [("IPOD2008GREEN", 2)]
    assert sent["reference_id"] == f"{shop_id}-{ORDER_ID}"
    assert our_fo.request_status == "ACCEPTED"
    assert own_fo.request_status == "UNSUBMITTED"
    assert order_row(runtime).state == states.PUSHED

    [parcel] = shipbob.ship(sent["id"])
    url = f"{server.url}/webhooks/fulfilment/shipbob"
    assert shipbob.send_webhook("order.shipped", url, parcel["id"], SECRET, webhook_id="msg_1").status_code == 200
    drain(runtime)
    [fulfilment] = order.fulfillments
    assert fulfilment.location_id == our_fo.location_id
    assert {line.id for line in our_fo.lines} == set(fulfilment.lines)
    assert [line.remaining for line in own_fo.lines] == [1]  # the merchant's own line is untouched
    assert order_row(runtime).state == states.SHIPPED


def test_an_order_update_after_the_push_compares_only_our_lines_and_applies_a_new_address_once(
    service, shopify, shipbob
) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    order, _, our_fo = two_location_order(server, runtime, shopify)
    request_fulfilment(server, shopify, our_fo.id)
    drain(runtime)
    [sent] = shipbob.state.orders.values()
    payload = order_payload(order)
    payload["updated_at"] = "2030-01-01T10:00:00-05:00"
    deliver(server, payload, "orders/updated")  # the merchant's own line is not "added" at the provider
    drain(runtime)
    assert list(shipbob.state.orders) == [sent["id"]] and sent["status"] != "Cancelled"
    assert shipbob.counters["address_updates"] == 0

    payload["shipping_address"] = {**payload["shipping_address"], "address1": "7 Corrected Road"}
    payload["updated_at"] = "2030-01-01T11:00:00-05:00"
    for _ in range(2):  # delivered twice: applied once
        deliver(server, payload, "orders/updated")
        drain(runtime)
    assert list(shipbob.state.orders) == [sent["id"]]
    assert shipbob.counters["address_updates"] == 1
    assert shipbob.state.order(sent["id"])["recipient"]["address"]["address1"] == "7 Corrected Road"
    assert [(p["reference_id"], p["quantity"]) for p in shipbob.state.order(sent["id"])["products"]] == [
        ("IPOD2008GREEN", 2)
    ]


def test_a_fulfilment_request_for_an_unknown_sku_is_rejected_with_the_reason_visible_to_the_merchant(
    service, shopify, shipbob
) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    _, _, our_fo = two_location_order(server, runtime, shopify, ours_sku="NO-SUCH-SKU")
    refusal = {"products[0].reference_id": ["Product with reference id NO-SUCH-SKU does not exist"]}
    shipbob.fail(422, method="POST", path="/order", body=refusal)
    request_fulfilment(server, shopify, our_fo.id)
    drain(runtime)
    assert shipbob.state.orders == {}
    assert our_fo.request_status == "REJECTED"
    [answer] = shopify.services.answers
    assert answer["kind"] == "reject_request" and answer["reason"] == "INVALID_SKU"
    assert "NO-SUCH-SKU" in answer["message"]
    assert any("rejected (INVALID_SKU)" in reason and "NO-SUCH-SKU" in reason for reason in timeline(runtime))
    with runtime.sessions() as session:
        assert "NO-SUCH-SKU" in session.get(ShopSync, shop_id).notice


def test_a_cancellation_request_before_shipping_is_accepted_once_the_provider_cancelled(
    service, shopify, shipbob
) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    _, _, our_fo = two_location_order(server, runtime, shopify)
    request_fulfilment(server, shopify, our_fo.id)
    drain(runtime)
    request_cancellation(server, shopify, our_fo.id)
    drain(runtime)
    [sent] = shipbob.state.orders.values()
    assert sent["status"] == "Cancelled"
    assert (our_fo.status, our_fo.request_status) == ("CANCELLED", "CANCELLATION_ACCEPTED")
    assert order_row(runtime).state == states.CANCELLED
    assert [a["kind"] for a in shopify.services.answers] == ["accept_request", "accept_cancellation"]


def test_a_cancellation_request_after_shipping_is_rejected_with_the_reason(service, shopify, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    _, _, our_fo = two_location_order(server, runtime, shopify)
    request_fulfilment(server, shopify, our_fo.id)
    drain(runtime)
    [sent] = shipbob.state.orders.values()
    shipbob.ship(sent["id"])  # the parcel left; its webhook has not reached Relais yet
    request_cancellation(server, shopify, our_fo.id)
    drain(runtime)
    assert our_fo.request_status == "CANCELLATION_REJECTED"
    rejected = shopify.services.answers[-1]
    assert rejected["kind"] == "reject_cancellation" and "shipped" in rejected["message"]
    assert order_row(runtime).state == states.CANCEL_TOO_LATE


def notification(server, kind: str, secret: str = SHOPIFY_SECRET) -> requests.Response:  # type: ignore[no-untyped-def]
    body = json.dumps({"kind": kind}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Hmac-Sha256": sign(secret, body),
    }
    url = f"{server.url}/shopify/fulfilment-service/fulfillment_order_notification"
    return requests.post(url, data=body, headers=headers, timeout=10)


def test_the_callback_with_a_bad_signature_is_401_and_changes_nothing(service, shopify, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    _, _, our_fo = two_location_order(server, runtime, shopify)
    request_fulfilment(server, shopify, our_fo.id, webhook=False)
    response = notification(server, "FULFILLMENT_REQUEST", secret="not-the-app-secret")
    assert response.status_code == 401
    assert not any(len(runtime.queue(name)) for name in runtime.queue_names)
    drain(runtime)
    assert shipbob.state.orders == {} and our_fo.request_status == "SUBMITTED"


def test_the_signed_callback_makes_relais_fetch_and_accept_the_waiting_request(service, shopify, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    _, _, our_fo = two_location_order(server, runtime, shopify)
    request_fulfilment(server, shopify, our_fo.id, webhook=False)
    assert notification(server, "FULFILLMENT_REQUEST").status_code == 200
    drain(runtime)
    assert len(shipbob.state.orders) == 1 and our_fo.request_status == "ACCEPTED"


def test_the_poll_picks_up_a_request_whose_webhook_was_lost_and_answers_it_once(service, shopify, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    _, _, our_fo = two_location_order(server, runtime, shopify)
    request_fulfilment(server, shopify, our_fo.id, webhook=False)
    assert poll_all() == 1
    drain(runtime)
    assert our_fo.request_status == "ACCEPTED"
    poll_all()  # nothing waits any more: nothing is answered twice
    drain(runtime)
    assert len(shipbob.state.orders) == 1
    assert [a["kind"] for a in shopify.services.answers] == ["accept_request"]


def test_a_fulfilment_order_on_hold_is_not_sent(service, shopify, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    _, _, our_fo = two_location_order(server, runtime, shopify)
    with shopify._lock:
        shopify.services.request_fulfilment(our_fo.id)
        shopify.services.hold(our_fo.id)
    deliver(server, {"fulfillment_order": {"id": our_fo.id, "status": "on_hold"}}, "fulfillment_orders/placed_on_hold")
    drain(runtime)
    assert shipbob.state.orders == {}
    assert any("put on hold" in reason for reason in timeline(runtime))


def test_installing_twice_or_after_a_crash_creates_one_fulfilment_service(live, shipbob, shopify) -> None:  # type: ignore[no-untyped-def]
    _, runtime = live
    shop_id = _add_shop(runtime, shipbob)
    first = ensure_now(runtime, shop_id)
    assert "created" in first
    assert "found" in ensure_now(runtime, shop_id)
    with transaction(runtime.sessions) as session:  # a crash between create and store: our row is lost
        session.delete(session.scalars(select(FulfilmentService)).one())
    assert "found" in ensure_now(runtime, shop_id)
    [made] = shopify.services.services
    assert (made.inventory_management, made.tracking_support) == (True, True)
    assert made.callback_url.endswith("/shopify/fulfilment-service")
    with runtime.sessions() as session:
        assert session.scalars(select(FulfilmentService)).one().location_id == made.location_id
        assert session.get(Shop, shop_id).settings["location_id"] == made.location_id


def test_shop_add_with_the_service_mode_setting_creates_the_fulfilment_service_at_once(live, shopify) -> None:  # type: ignore[no-untyped-def]
    _, runtime = live
    from app import create_app

    runner = create_app(runtime=runtime).test_cli_runner()
    args = ["shop", "add", "shopify", SHOP, "--token", TOKEN, "--setting", "fulfilment_mode=service"]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "service created" in result.output
    assert len(shopify.services.services) == 1
    refused = runner.invoke(args=[*args[:-1], "fulfilment_mode=both"])
    assert refused.exit_code != 0 and "service, order_webhooks" in refused.output


def test_shop_add_keeps_order_webhooks_mode_unless_told_otherwise(live, shopify) -> None:  # type: ignore[no-untyped-def]
    _, runtime = live
    from app import create_app

    result = (
        create_app(runtime=runtime).test_cli_runner().invoke(args=["shop", "add", "shopify", SHOP, "--token", TOKEN])
    )
    assert result.exit_code == 0, result.output
    assert shopify.services.services == []
    with runtime.sessions() as session:
        assert session.scalars(select(Shop)).one().settings["fulfilment_mode"] == "order_webhooks"


def test_a_released_hold_lets_the_waiting_request_through(service, shopify, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    _, _, our_fo = two_location_order(server, runtime, shopify)
    with shopify._lock:
        shopify.services.request_fulfilment(our_fo.id)
        shopify.services.hold(our_fo.id)
    deliver(server, {"fulfillment_order": {"id": our_fo.id}}, "fulfillment_orders/placed_on_hold")
    drain(runtime)
    with shopify._lock:
        our_fo.status = "OPEN"  # the merchant releases the hold
    deliver(server, {"fulfillment_order": {"id": our_fo.id}}, "fulfillment_orders/hold_released")
    drain(runtime)
    assert len(shipbob.state.orders) == 1 and our_fo.request_status == "ACCEPTED"


def test_a_fulfilment_order_moved_away_after_the_push_is_cancelled_at_the_provider(service, shopify, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    _, _, our_fo = two_location_order(server, runtime, shopify)
    request_fulfilment(server, shopify, our_fo.id)
    drain(runtime)
    with shopify._lock:
        shopify.services.move(our_fo.id, OWN)
    payload = {"original_fulfillment_order": {"id": our_fo.id}, "moved_fulfillment_order": {"id": our_fo.id}}
    deliver(server, payload, "fulfillment_orders/moved")
    drain(runtime)
    [sent] = shipbob.state.orders.values()
    assert sent["status"] == "Cancelled"
    assert order_row(runtime).state == states.CANCELLED
    assert "fulfilment order moved to another location" in timeline(runtime)


def test_the_callback_refuses_an_unknown_kind_and_an_unknown_shop_and_stores_nothing(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    assert notification(server, "SOMETHING_ELSE").status_code == 400
    body = json.dumps({"kind": "FULFILLMENT_REQUEST"}).encode()
    headers = {"X-Shopify-Shop-Domain": "nobody.myshopify.com", "X-Shopify-Hmac-Sha256": sign(SHOPIFY_SECRET, body)}
    url = f"{server.url}/shopify/fulfilment-service/fulfillment_order_notification"
    assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 404
    assert not any(len(runtime.queue(name)) for name in runtime.queue_names)


def test_a_second_fulfilment_order_of_an_order_already_sent_is_rejected_not_accepted_unsent(
    service, shopify, shipbob
) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    location = our_location(runtime)
    order = shopify.add_order(ORDER_ID, [("IPOD2008GREEN", 2, location), ("IPOD2008RED", 1, location)])
    [first] = order.fulfillment_orders
    with shopify._lock:  # Shopify split the FO: the red line is on a second FO at our location
        second = FakeFO("gid://shopify/FulfillmentOrder/99", order.id, location, lines=[first.lines.pop()])
        shopify.state.fos[second.id] = second
        order.fulfillment_orders.append(second)
    payload = paid_order(ORDER_ID)
    payload["line_items"] = [
        {"id": int(li.legacy_id), "sku": li.sku, "name": li.sku, "quantity": li.quantity, "requires_shipping": True}
        for li in order.line_items
    ]
    deliver(server, payload, "orders/paid")
    request_fulfilment(server, shopify, first.id)
    drain(runtime)
    request_fulfilment(server, shopify, second.id)
    drain(runtime)
    [sent] = shipbob.state.orders.values()
    assert [(p["reference_id"], p["quantity"]) for p in sent["products"]] == [("IPOD2008GREEN", 2)]
    assert (first.request_status, second.request_status) == ("ACCEPTED", "REJECTED")
    assert "these lines were not sent" in shopify.services.answers[-1]["message"]


def test_a_split_of_an_accepted_fulfilment_order_is_followed_and_the_order_still_ships_in_full(
    service, shopify, shipbob
) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    order, _, our_fo = two_location_order(server, runtime, shopify)
    request_fulfilment(server, shopify, our_fo.id)
    drain(runtime)
    with shopify._lock:  # Shopify splits one of the two units off onto a new, accepted FO
        [line] = our_fo.lines
        line.total, line.remaining = 1, 1
        split_line = FakeFOLine("gid://shopify/FulfillmentOrderLineItem/98", line.line_item, 1, 1)
        split = FakeFO("gid://shopify/FulfillmentOrder/98", order.id, our_fo.location_id, "IN_PROGRESS", [split_line])
        split.request_status = "ACCEPTED"
        shopify.state.fos[split.id] = split
        order.fulfillment_orders.append(split)
    payload = {"fulfillment_order": {"id": our_fo.id}, "remaining_fulfillment_order": {"id": split.id}}
    deliver(server, payload, "fulfillment_orders/split")
    drain(runtime)
    [sent] = shipbob.state.orders.values()
    [parcel] = shipbob.ship(sent["id"])
    url = f"{server.url}/webhooks/fulfilment/shipbob"
    assert shipbob.send_webhook("order.shipped", url, parcel["id"], SECRET, webhook_id="msg_split").status_code == 200
    drain(runtime)
    [fulfilment] = order.fulfillments
    assert sorted(fulfilment.lines.values()) == [1, 1]  # one unit from each of our two FOs
    assert order_row(runtime).state == states.SHIPPED
