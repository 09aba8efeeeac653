"""The whole service with ShipBob as the provider (the fake behaves like ShipBob's documented API).

Signed Shopify order → one ShipBob order with the right lines and address; ShipBob's signed
webhooks enter through Relais' endpoint (good, bad, replayed, stale); a parcel whose webhook
never came is found by polling; tracking is written to Shopify, then acknowledged at ShipBob.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select

from jobs.polling import poll_all
from store.db import transaction
from store.models import Order, Shipment, WebhookEvent
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shipbob import FakeShipBob, make_secret
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "shipbob-shop.myshopify.com"
TOKEN = "shpat_sb"
OURS = "gid://shopify/Location/64500000001"
SECRET = make_secret()


@pytest.fixture
def shopify() -> Iterator[FakeShopifyAdmin]:
    fake = FakeShopifyAdmin(TOKEN, restore_rate=10_000).start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings, shipbob, shopify):  # type: ignore[no-untyped-def]
    return settings.with_(shipbob_api_url=shipbob.url, shopify_admin_url=shopify.url + "/{shop}")


@pytest.fixture
def service(live, shipbob):  # type: ignore[no-untyped-def]
    server, runtime = live
    options = {
        "token": shipbob.token,
        "channel_id": str(shipbob.channel_id),
        "webhook_secret": SECRET,
        "rate_limit": "150",
        "rate_window": "6",
    }
    with transaction(runtime.sessions) as session:
        shop_id = upsert_shop(
            session, runtime.vault, "shopify", SHOP, {"access_token": TOKEN}, "shipbob", options, {"location_id": OURS}
        ).id
    return server, runtime, shop_id


def deliver(server, payload: dict, topic: str = "orders/paid", webhook_id: str | None = None) -> None:  # type: ignore[no-untyped-def]
    body = body_of(payload)
    headers = headers_for(SHOP, topic, body, SHOPIFY_SECRET, webhook_id)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200


def with_shopify_lines(shopify: FakeShopifyAdmin, order_id: int) -> dict:
    order = shopify.add_order(order_id, [("IPOD2008GREEN", 2, OURS), ("IPOD2008RED", 1, OURS)])
    payload = paid_order(order_id)
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


def test_a_signed_orders_paid_gives_one_shipbob_order_with_the_right_lines_and_address(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    for _ in range(3):
        deliver(server, paid_order(820982911946154508), webhook_id="the-same-delivery")
    deliver(server, paid_order(820982911946154508, minutes=1), topic="orders/updated")
    drain(runtime)
    [order] = shipbob.state.orders.values()
    assert order["reference_id"] == f"{shop_id}-820982911946154508"
    assert sorted((p["reference_id"], p["quantity"]) for p in order["products"]) == [
        ("IPOD2008GREEN", 2),
        ("IPOD2008RED", 1),
    ]
    address = order["recipient"]["address"]
    assert (address["address1"], address["city"], address["country"]) == ("Chestnut Street 92", "Louisville", "US")
    assert shipbob.counters.get("429", 0) == 0


def test_a_create_whose_answer_was_lost_still_gives_one_shipbob_order(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    shipbob.answer_late(3.0, method="POST", path="/order")  # longer than the 2 s provider timeout
    deliver(server, paid_order(5005))
    drain(runtime)
    assert len(shipbob.state.orders) == 1
    with runtime.sessions() as session:
        outcomes = session.scalars(select(Order)).one().attempts
        assert [a.outcome for a in outcomes] == ["retryable", "duplicate"]


def shipbob_order_id(shipbob: FakeShipBob) -> int:
    return next(iter(shipbob.state.orders))


def test_shipbob_webhooks_record_the_parcel_write_it_to_shopify_and_acknowledge_it(service, shipbob, shopify) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    deliver(server, with_shopify_lines(shopify, 7007))
    drain(runtime)
    [parcel] = shipbob.ship(shipbob_order_id(shipbob))
    url = f"{server.url}/webhooks/fulfilment/shipbob"
    response = shipbob.send_webhook("order.shipped", url, parcel["id"], SECRET, webhook_id="msg_1")
    assert response.status_code == 200
    assert shipbob.send_webhook("order.shipped", url, parcel["id"], SECRET, webhook_id="msg_1").status_code == 200
    drain(runtime)
    [fulfilment] = shopify.state.orders["gid://shopify/Order/7007"].fulfillments
    with runtime.sessions() as session:
        row = session.scalars(select(Shipment)).one()
        assert fulfilment.tracking[0]["number"] == row.tracking_number
        assert row.acknowledged_at is not None
        assert (
            session.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.source == "shipbob")) == 1
        )
    assert shipbob.state.shipments[parcel["id"]]["is_tracking_uploaded"] is True


def test_bad_replayed_and_stale_shipbob_signatures_are_401_and_store_nothing(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    deliver(server, paid_order(8008))
    drain(runtime)
    [parcel] = shipbob.ship(shipbob_order_id(shipbob))
    url = f"{server.url}/webhooks/fulfilment/shipbob"
    assert shipbob.send_webhook("order.shipped", url, parcel["id"], make_secret()).status_code == 401
    stale = datetime.now(UTC) - timedelta(minutes=10)
    assert shipbob.send_webhook("order.shipped", url, parcel["id"], SECRET, at=stale).status_code == 401
    headers, body = shipbob.webhook_delivery("order.shipped", parcel["id"], SECRET)
    tampered = body.replace(b"Completed", b"Cancelled")
    assert requests.post(url, data=tampered, headers=headers, timeout=10).status_code == 401
    del headers["webhook-signature"]
    assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 401
    with runtime.sessions() as session:
        assert (
            session.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.source == "shipbob")) == 0
        )
    assert runtime.queue("webhooks").count == 0


def test_polling_finds_a_parcel_whose_webhook_never_came_and_acknowledges_it(service, shipbob, shopify) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    deliver(server, with_shopify_lines(shopify, 9009))
    drain(runtime)
    parcels = shipbob.ship(shipbob_order_id(shipbob), parcels=2)  # no webhook is ever sent
    assert poll_all() == 1
    drain(runtime)
    assert len(shopify.state.orders["gid://shopify/Order/9009"].fulfillments) == 2
    assert all(shipbob.state.shipments[p["id"]]["is_tracking_uploaded"] for p in parcels)
    with runtime.sessions() as session:
        assert session.scalars(select(Order.state)).one() in ("shipped", "delivered")
    assert poll_all() == 1
    drain(runtime)  # a second poll finds nothing left unacknowledged
    assert len(shopify.state.orders["gid://shopify/Order/9009"].fulfillments) == 2


def test_cancel_at_shipbob_after_push_records_each_shipments_result(service, shipbob) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = service
    deliver(server, paid_order(6006))
    drain(runtime)
    cancelled_at = datetime(2026, 11, 20, 10, 5, tzinfo=UTC).isoformat()
    deliver(server, paid_order(6006, minutes=5, cancelled_at=cancelled_at), topic="orders/cancelled")
    drain(runtime)
    with runtime.sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.state == "cancelled"
        [cancel] = [a for a in order.attempts if a.action == "cancel"]
        assert cancel.outcome == "cancelled" and cancel.detail["shipments"]
    assert shipbob.state.orders[shipbob_order_id(shipbob)]["status"] == "Cancelled"


def test_an_account_wide_delivery_without_our_reference_is_routed_by_the_shops_own_url(service) -> None:  # type: ignore[no-untyped-def]
    import json

    from standardwebhooks import Webhook

    from store.models import Shop

    server, runtime, shop_id = service
    with runtime.sessions() as session:
        token = session.get(Shop, shop_id).webhook_token
    body = json.dumps({"event_time": datetime.now(UTC).isoformat(), "shipment_id": 1, "status": "OnHold"})
    at = datetime.now(UTC)

    def headers(secret: str, msg: str) -> dict[str, str]:
        return {
            "webhook-id": msg,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg, at, body),
            "x-webhook-topic": "order.shipment.on_hold",
            "content-type": "application/json",
        }

    bare = f"{server.url}/webhooks/fulfilment/shipbob"
    assert requests.post(bare, data=body, headers=headers(SECRET, "msg_w"), timeout=10).status_code == 400
    url = f"{bare}/{token}"
    by_id = f"{bare}/{shop_id}"  # a guessable shop id names no shop
    assert requests.post(by_id, data=body, headers=headers(SECRET, "msg_v"), timeout=10).status_code == 404
    assert requests.post(url, data=body, headers=headers(make_secret(), "msg_x"), timeout=10).status_code == 401
    assert requests.post(url, data=body, headers=headers(SECRET, "msg_y"), timeout=10).status_code == 200
    with runtime.sessions() as session:
        [event] = session.scalars(select(WebhookEvent).where(WebhookEvent.source == "shipbob")).all()
        assert event.shop_id == shop_id and event.delivery_key == f"{shop_id}:msg_y"


def test_a_parcel_that_comes_before_the_creates_answer_runs_as_soon_as_the_push_lands(
    service, shipbob, shopify
) -> None:  # type: ignore[no-untyped-def]
    """The create reached ShipBob but its answer was lost; ShipBob ships and says so before our
    retry records the order id. The shipment's job waits on RQ's schedule (5 s, 30 s, 120 s…)
    only until the push lands: the push moves it to its queue at once."""
    from rq import SimpleWorker
    from rq.registry import ScheduledJobRegistry

    server, runtime, _ = service
    runtime.settings = runtime.settings.with_(retry_backoff=(10,))  # the push's retry, 10 s away
    shipbob.answer_late(3.0, method="POST", path="/order")  # longer than the 2 s provider timeout
    deliver(server, with_shopify_lines(shopify, 6006))
    queues = [runtime.queue(name) for name in runtime.queue_names]
    worker = SimpleWorker(queues, connection=runtime.redis)
    worker.work(burst=True, logging_level="WARNING")  # delivery, then the push: retryable, scheduled
    with runtime.sessions() as session:
        assert session.scalars(select(Order)).one().state == "pushing"
    [parcel] = shipbob.ship(shipbob_order_id(shipbob))
    url = f"{server.url}/webhooks/fulfilment/shipbob"
    assert shipbob.send_webhook("order.shipped", url, parcel["id"], SECRET).status_code == 200
    worker.work(burst=True, logging_level="WARNING")  # the shipment's job: the push is still out
    with runtime.sessions() as session:
        event = session.scalars(select(WebhookEvent).where(WebhookEvent.source == "shipbob")).one()
        assert event.status == "received"
    registries = {name: ScheduledJobRegistry(name, connection=runtime.redis) for name in runtime.queue_names}
    assert any(f"event-{event.id}" in r for r in registries.values())  # on RQ's schedule, seconds away
    for registry in registries.values():  # the push's own retry comes due (as RQ's scheduler would)
        for job_id in registry.get_job_ids():
            if job_id != f"event-{event.id}":
                registry.requeue(job_id)
    worker.work(burst=True, logging_level="WARNING")  # the push lands, then the woken shipment job
    with runtime.sessions() as session:
        assert session.scalars(select(Order)).one().state == "shipped"
        assert session.get(WebhookEvent, event.id).status == "processed"
        assert session.scalars(select(Shipment)).one().tracking_number
    assert not any(f"event-{event.id}" in r for r in registries.values())


def _push_waiting_for_its_retry(server, runtime, shipbob, shopify, order_id: int):  # type: ignore[no-untyped-def]
    """A paid order whose create ShipBob refused with a 500: its push waits for a retry an hour
    away. Returns the worker and the push's job id."""
    from rq import SimpleWorker
    from rq.registry import ScheduledJobRegistry

    runtime.settings = runtime.settings.with_(retry_backoff=(3600,))
    shipbob.fail(500, method="POST", path="/order")
    deliver(server, with_shopify_lines(shopify, order_id))
    worker = SimpleWorker([runtime.queue(name) for name in runtime.queue_names], connection=runtime.redis)
    worker.work(burst=True, logging_level="WARNING")
    with runtime.sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.state == "pushing"
        push_id = f"push-{order.id}-{order.generation}"
    registry = ScheduledJobRegistry("orders", connection=runtime.redis)
    assert runtime.redis.zscore(registry.key, push_id) > datetime.now(UTC).timestamp() + 50 * 60
    return worker, push_id


def _cancel_on_shopify(server, order_id: int) -> None:  # type: ignore[no-untyped-def]
    cancelled_at = datetime.now(UTC).isoformat()
    deliver(server, paid_order(order_id, minutes=5, cancelled_at=cancelled_at), topic="orders/cancelled")


def test_a_cancel_while_the_push_waits_for_its_retry_runs_that_retry_now_and_nothing_reaches_shipbob(
    service, shipbob, shopify
) -> None:  # type: ignore[no-untyped-def]
    """The cancel must know no create of ours can still land before it calls the order cancelled,
    so it waits for the push job. A push waiting an hour for its retry would hold the order in
    ``cancel_requested`` for that hour: the cancel runs the retry now instead, which finds the order
    cancelled and sends nothing."""
    from rq.registry import ScheduledJobRegistry

    server, runtime, _ = service
    worker, push_id = _push_waiting_for_its_retry(server, runtime, shipbob, shopify, 6010)
    _cancel_on_shopify(server, 6010)
    worker.work(burst=True, logging_level="WARNING")  # the cancel (nothing at ShipBob), then the hurried push
    registries = [ScheduledJobRegistry(name, connection=runtime.redis) for name in runtime.queue_names]
    assert not any(push_id in r for r in registries)
    with runtime.sessions() as session:
        assert session.scalars(select(Order)).one().state == "cancel_requested"
    for registry in registries:  # the cancel's own retry, 5 s away, comes due (as RQ's scheduler would)
        for job_id in registry.get_job_ids():
            registry.requeue(job_id)
    worker.work(burst=True, logging_level="WARNING")
    with runtime.sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.state == "cancelled"
        assert [a.outcome for a in order.attempts if a.action == "create"] == ["retryable"]
    assert shipbob.state.orders == {}


def test_a_cancel_is_not_held_for_good_by_a_push_marked_queued_that_no_queue_holds(service, shipbob, shopify) -> None:  # type: ignore[no-untyped-def]
    """Found by the fault drill: Redis restored from its saved data between RQ's two writes left a
    push ``queued`` in no list. The sweep re-runs a ``cancel_requested`` order's cancel, never its
    push, so the cancel waited for a push that would never run, retry after retry."""
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    server, runtime, _ = service
    worker, push_id = _push_waiting_for_its_retry(server, runtime, shipbob, shopify, 6011)
    ScheduledJobRegistry("orders", connection=runtime.redis).requeue(push_id)
    runtime.redis.lrem(runtime.queue("orders").key, 0, push_id)  # the list lost it, the hash did not
    push = Job.fetch(push_id, connection=runtime.redis)
    push.enqueued_at = datetime.now(UTC) - timedelta(minutes=5)
    push.save()
    _cancel_on_shopify(server, 6011)
    worker.work(burst=True, logging_level="WARNING")
    with runtime.sessions() as session:
        assert session.scalars(select(Order)).one().state == "cancelled"
    assert shipbob.state.orders == {}
