"""Shopify orders edited after they reached ShipBob (the fake behaves like ShipBob's documented
order, shipment-address and cancel calls): applied in place, cancelled and sent again under a new
reference with never two live orders, or held for the merchant with the reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select

from jobs.edits import edit_order
from jobs.runtime import set_runtime
from store.db import transaction
from store.edit_models import OrderEdit
from store.models import Order
from store.shops import upsert_shop
from store.sync_models import ShopSync
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shipbob import make_secret
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "edits-shop.myshopify.com"
TOKEN = "shpat_edits"
OURS = "gid://shopify/Location/64500000001"
SECRET = make_secret()
ORDER = 820982911946154508


@pytest.fixture
def shopify() -> Iterator[FakeShopifyAdmin]:
    fake = FakeShopifyAdmin(TOKEN, restore_rate=10_000).start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings, shipbob, shopify, request):  # type: ignore[no-untyped-def]
    changed = settings.with_(shipbob_api_url=shipbob.url, shopify_admin_url=shopify.url + "/{shop}")
    if getattr(request, "param", "") == "slow retry":  # a retry lands after drain() gives up
        changed = changed.with_(retry_backoff=(600,))
    return changed


@pytest.fixture
def service(live, shipbob):  # type: ignore[no-untyped-def]
    server, runtime = live
    options = {"token": shipbob.token, "channel_id": str(shipbob.channel_id), "webhook_secret": SECRET}
    with transaction(runtime.sessions) as session:
        shop_id = upsert_shop(
            session, runtime.vault, "shopify", SHOP, {"access_token": TOKEN}, "shipbob", options, {"location_id": OURS}
        ).id
    return server, runtime, shop_id


def deliver(server, payload: dict, topic: str = "orders/updated") -> None:  # type: ignore[no-untyped-def]
    body = body_of(payload)
    headers = headers_for(SHOP, topic, body, SHOPIFY_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200


def moved(minutes: int, **order: object) -> dict:
    payload = paid_order(ORDER, minutes=minutes, **order)
    payload["shipping_address"] = {**payload["shipping_address"], "address1": "7 Corrected Road", "city": "Lexington"}
    return payload


def without_red(minutes: int) -> dict:
    payload = paid_order(ORDER, minutes=minutes)
    payload["line_items"][1]["current_quantity"] = 0  # removed by an order edit
    return payload


def order_row(runtime):  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        row = session.scalars(select(Order)).one()
        session.expunge(row)
        return row


def timeline(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return [t.reason for t in session.scalars(select(Order)).one().history]


def test_an_address_corrected_after_push_reaches_shipbob_once(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    deliver(server, paid_order(ORDER), topic="orders/paid")
    drain(runtime)
    deliver(server, moved(5))
    deliver(server, moved(5))  # the same edit delivered twice (Shopify repeats orders/updated)
    drain(runtime)
    deliver(server, moved(5))  # and once more after it was applied
    drain(runtime)
    [order] = shipbob.state.orders.values()
    assert order["reference_id"] == f"{shop_id}-{ORDER}"
    assert order["recipient"]["address"]["address1"] == "7 Corrected Road"
    assert order["recipient"]["address"]["city"] == "Lexington"
    assert shipbob.counters["address_updates"] == 1
    assert order["status"] == "Processing"
    assert any("edit applied at shipbob: shipping address changed (now Lexington" in r for r in timeline(runtime))


def test_a_line_removed_after_push_is_sent_again_under_a_new_reference_with_one_live_order(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    deliver(server, paid_order(ORDER), topic="orders/paid")
    drain(runtime)
    [first] = shipbob.state.orders.values()
    deliver(server, without_red(5))
    deliver(server, without_red(5))
    drain(runtime)
    [live] = shipbob.state.live_orders()
    assert live["reference_id"] == f"{shop_id}-{ORDER}-g2"
    assert [(p["reference_id"], p["quantity"]) for p in live["products"]] == [("IPOD2008GREEN", 2)]
    assert shipbob.state.order(first["id"])["status"] == "Cancelled"
    assert len(shipbob.state.orders) == 2
    row = order_row(runtime)
    assert (row.state, row.provider_reference, row.provider_order_id) == (
        "pushed",
        f"{shop_id}-{ORDER}-g2",
        str(live["id"]),
    )
    reasons = timeline(runtime)
    assert any("line IPOD2008RED removed (was 1)" in r and "cancelled and sent again" in r for r in reasons)
    assert "cancelled at shipbob to apply the edit; sending the edited order again" in reasons
    assert "edit applied: the edited order was sent again and the earlier one is cancelled" in reasons


def test_a_parcel_of_the_cancelled_order_does_not_count_for_the_order_sent_again(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    deliver(server, paid_order(ORDER), topic="orders/paid")
    drain(runtime)
    [first] = shipbob.state.orders.values()
    deliver(server, without_red(5))
    drain(runtime)
    old_shipment = first["shipments"][0]["id"]
    url = f"{server.url}/webhooks/fulfilment/shipbob"
    assert shipbob.send_webhook("order.shipment.cancelled", url, old_shipment, SECRET).status_code == 200
    drain(runtime)
    row = order_row(runtime)
    assert row.state == "pushed"
    assert any("is not the one this order was sent as" in r for r in timeline(runtime))


def test_an_address_edit_after_shipbob_shipped_is_held_with_the_reason(service, shipbob, shopify) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    shopify.add_order(ORDER, [("IPOD2008GREEN", 2, OURS), ("IPOD2008RED", 1, OURS)])
    deliver(server, paid_order(ORDER), topic="orders/paid")
    drain(runtime)
    [order] = shipbob.state.orders.values()
    [parcel] = shipbob.ship(order["id"])
    url = f"{server.url}/webhooks/fulfilment/shipbob"
    assert shipbob.send_webhook("order.shipped", url, parcel["id"], SECRET).status_code == 200
    drain(runtime)
    assert order_row(runtime).state == "shipped"
    deliver(server, moved(5))
    drain(runtime)
    deliver(server, moved(5))  # repeated: held once, told once
    drain(runtime)
    assert shipbob.counters["address_updates"] == 0
    assert len(shipbob.state.orders) == 1
    held = [r for r in timeline(runtime) if r.startswith("edit held for the merchant")]
    assert held == [
        "edit held for the merchant: changed after shipbob shipped it (shipping address changed "
        "(now Lexington, US)): not applied, check with the customer"
    ]
    with runtime.sessions() as session:
        assert "edit not applied" in session.get(ShopSync, shop_id).notice


def test_an_address_edit_shipbob_refuses_because_it_left_is_held_and_nothing_is_sent_again(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    deliver(server, paid_order(ORDER), topic="orders/paid")
    drain(runtime)
    [order] = shipbob.state.orders.values()
    shipbob.ship(order["id"])  # labelled at ShipBob; its webhook has not arrived yet
    requests_before = shipbob.counters["requests"]
    deliver(server, moved(5))
    drain(runtime)
    deliver(server, moved(5))  # repeated: ShipBob is not asked again
    drain(runtime)
    assert shipbob.counters["requests"] == requests_before + 1  # the order read once, found shipped
    assert shipbob.counters["address_updates"] == 0
    assert len(shipbob.state.live_orders()) == 1
    assert any(
        r.startswith("edit held for the merchant: shipbob refused the change: ShipBob already shipped shipment")
        for r in timeline(runtime)
    )
    with runtime.sessions() as session:
        [edit] = session.scalars(select(OrderEdit)).all()
        assert edit.status == "held"


@pytest.mark.parametrize("settings", ["slow retry"], indirect=True)
def test_a_re_create_stopped_after_the_cancel_resumes_from_its_stored_step_with_one_live_order(
    service, shipbob
) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    deliver(server, paid_order(ORDER), topic="orders/paid")
    drain(runtime)
    shipbob.answer_late(3.0, method="POST", path=":cancel")  # cancelled at ShipBob, answer lost
    deliver(server, without_red(5))
    drain(runtime)  # the edit job's retry is 10 minutes away: as good as a crash
    assert shipbob.state.live_orders() == []
    with runtime.sessions() as session:
        [edit] = session.scalars(select(OrderEdit)).all()
        assert edit.status == "cancelling"
    assert order_row(runtime).provider_reference == f"{shop_id}-{ORDER}"

    set_runtime(runtime)
    assert edit_order(order_row(runtime).id) == "recreating"  # run again: the cancel is repeated, then sent
    assert edit_order(order_row(runtime).id) == "push queued"  # and again: nothing is cancelled twice
    drain(runtime)
    assert edit_order(order_row(runtime).id) == "shipbob already has this version of the order"
    [live] = shipbob.state.live_orders()
    assert live["reference_id"] == f"{shop_id}-{ORDER}-g2"
    assert len(shipbob.state.orders) == 2
    with runtime.sessions() as session:
        [edit] = session.scalars(select(OrderEdit)).all()
        assert edit.status == "recreated"


def test_an_orders_edited_delivery_reads_the_order_back_and_applies_the_new_address_once(
    service, shipbob, shopify
) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    server, runtime, _ = service
    paid_at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    order = shopify.orders.put(ORDER, [("IPOD2008GREEN", 2, OURS), ("IPOD2008RED", 1, OURS)], updated_at=paid_at)
    payload = paid_order(ORDER)
    payload["shipping_address"] = {
        "name": "Bob Norman",
        "first_name": "Bob",
        "last_name": "Norman",
        "address1": "Chestnut Street 92",
        "address2": "",
        "city": "Louisville",
        "province_code": "KY",
        "zip": "40202",
        "country_code": "US",
        "phone": "+1(502)-459-2181",
    }
    payload["line_items"] = [
        {
            "id": int(li.legacy_id),
            "sku": li.sku,
            "name": li.sku,
            "quantity": li.quantity,
            "current_quantity": li.quantity,
        }
        for li in order.line_items
    ]
    deliver(server, payload, topic="orders/paid")
    drain(runtime)
    assert shipbob.counters["address_updates"] == 0
    moved_to = {
        **shopify.orders.records[order.id].shipping_address,
        "address1": "7 Corrected Road",
        "city": "Lexington",
    }
    shopify.orders.update(ORDER, updated_at=datetime(2026, 11, 20, 10, 5, tzinfo=UTC), shipping_address=moved_to)
    edit = {"order_edit": {"id": 991, "order_id": ORDER, "line_items": {"additions": [], "removals": []}}}
    deliver(server, edit, topic="orders/edited")
    deliver(server, edit, topic="orders/edited")  # delivered twice: one change at ShipBob
    drain(runtime)
    [at_shipbob] = shipbob.state.orders.values()
    assert at_shipbob["recipient"]["address"]["address1"] == "7 Corrected Road"
    assert shipbob.counters["address_updates"] == 1
    assert order_row(runtime).ship_to["city"] == "Lexington"


@pytest.mark.parametrize("settings", ["slow retry"], indirect=True)
def test_an_edit_whose_job_a_redis_flush_took_is_resumed_by_the_sweep(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    from jobs.maintenance import sweep

    server, runtime, shop_id = service
    deliver(server, paid_order(ORDER), topic="orders/paid")
    drain(runtime)
    shipbob.answer_late(3.0, method="POST", path=":cancel")  # cancelled at ShipBob, answer lost
    deliver(server, without_red(5))
    drain(runtime)
    runtime.redis.flushdb()  # the edit's retry goes with it
    set_runtime(runtime)
    assert sweep(older_than_seconds=0)["orders"] == 1
    drain(runtime)
    [live] = shipbob.state.live_orders()
    assert live["reference_id"] == f"{shop_id}-{ORDER}-g2"
    assert order_row(runtime).state == "pushed"


@pytest.mark.parametrize("settings", ["slow retry"], indirect=True)
def test_an_address_corrected_while_a_lost_create_waits_for_its_retry_still_reaches_shipbob(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    from jobs.orders import push_order

    server, runtime, _ = service
    shipbob.answer_late(3.0, method="POST", path="^/order$")  # created at ShipBob, the answer lost
    deliver(server, paid_order(ORDER), topic="orders/paid")
    drain(runtime)  # the push's retry is 10 minutes away
    deliver(server, moved(5))  # the customer corrects the street meanwhile
    drain(runtime)
    [order] = shipbob.state.orders.values()
    assert order["recipient"]["address"]["city"] == "Louisville"
    set_runtime(runtime)
    assert push_order(order_row(runtime).id) == "pushed"  # the retry: "duplicate", ShipBob has the first version
    drain(runtime)
    [order] = shipbob.state.orders.values()
    assert order["recipient"]["address"]["city"] == "Lexington"
    assert shipbob.counters["address_updates"] == 1


def test_an_edit_to_an_order_sent_to_the_shop_s_former_provider_is_held_with_the_reason(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    from store.models import Shop

    server, runtime, shop_id = service
    deliver(server, paid_order(ORDER), topic="orders/paid")
    drain(runtime)
    with transaction(runtime.sessions) as session:
        session.get(Shop, shop_id).provider = "sandbox"  # the merchant moved to another 3PL since
    deliver(server, moved(5))
    drain(runtime)
    assert shipbob.counters["address_updates"] == 0
    assert "edit held for the merchant: it was sent to shipbob, and the shop now uses sandbox: not applied" in timeline(
        runtime
    )


def test_an_edit_held_while_the_order_is_at_shipbob_is_listed_for_the_merchant_with_the_reason(
    service, shipbob
) -> None:  # type: ignore[no-untyped-def]
    from store.merchant_view import attention

    server, runtime, shop_id = service
    deliver(server, paid_order(ORDER), topic="orders/paid")
    drain(runtime)
    [order] = shipbob.state.orders.values()
    shipbob.ship(order["id"])  # labelled at ShipBob; its webhook has not arrived yet: still pushed here
    deliver(server, moved(5))
    drain(runtime)
    with runtime.sessions() as session:
        [view] = attention(session, shop_id)
    assert view.state == "pushed" and view.category == "edit not applied"
    assert view.reason.startswith("edit not applied: shipbob refused the change: ShipBob already shipped shipment")
