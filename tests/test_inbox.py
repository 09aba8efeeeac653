"""The inbox insert (``store.inbox``): one statement stores a delivery for its shop or finds it is a
repeat, on SQLite and PostgreSQL alike; the receiver's enqueue after it (``jobs.queues.enqueue_new``)
and what happens when Redis fails once the row is committed."""

from __future__ import annotations

import threading

import pytest
import redis as redis_lib
from rq.job import Job, JobStatus
from sqlalchemy import delete, func, select, update

from app import create_app
from config import log_context
from jobs.maintenance import enqueue_new_event, sweep
from jobs.runtime import build_runtime, set_runtime
from store import inbox
from store.db import transaction
from store.models import Shop, WebhookEvent
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET, TEST_DB_URL
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "inbox.myshopify.com"


def add_shop(runtime, domain: str = SHOP) -> int:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        return upsert_shop(session, runtime.vault, "shopify", domain, {"access_token": "shpat_x"}, "sandbox", {}).id


def delivery(key: str = "inbox.myshopify.com:w1", event_key: str | None = "orders/paid:e1") -> inbox.Delivery:
    return inbox.Delivery(
        "shopify", key, "orders/paid", body_of(paid_order()), {"X-Shopify-Topic": "orders/paid"}, event_key
    )


def rows(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(WebhookEvent))


def test_a_new_delivery_is_stored_with_its_shop_and_its_repeat_is_found_as_the_same_row(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_shop(runtime)
    first = inbox.store(runtime.engine, delivery(), inbox.shop_by_domain("shopify", SHOP))
    again = inbox.store(runtime.engine, delivery(), inbox.shop_by_domain("shopify", SHOP))
    assert first is not None and again is not None
    assert (first.new, first.needs_job, first.shop_id) == (True, True, shop_id)
    assert (again.event_id, again.new, again.needs_job) == (first.event_id, False, True)  # not processed yet
    with runtime.sessions() as session:
        row = session.get(WebhookEvent, first.event_id)
        assert (row.body, row.headers, row.status, row.attempts) == (
            delivery().body,
            {"X-Shopify-Topic": "orders/paid"},
            "received",
            0,
        )
        assert row.received_at is not None
    assert rows(runtime) == 1


def test_a_repeat_of_a_processed_delivery_needs_no_job(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_shop(runtime)
    first = inbox.store(runtime.engine, delivery(), inbox.shop_by_id(shop_id))
    with transaction(runtime.sessions) as session:
        session.execute(update(WebhookEvent).where(WebhookEvent.id == first.event_id).values(status="processed"))
    again = inbox.store(runtime.engine, delivery(), inbox.shop_by_id(shop_id))
    assert (again.event_id, again.new, again.needs_job) == (first.event_id, False, False)


def test_the_same_shopify_event_under_another_webhook_id_is_a_repeat(runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    shop = inbox.shop_by_domain("shopify", SHOP)
    first = inbox.store(runtime.engine, delivery("inbox.myshopify.com:w1"), shop)
    second = inbox.store(runtime.engine, delivery("inbox.myshopify.com:w2"), shop)
    other_event = inbox.store(runtime.engine, delivery("inbox.myshopify.com:w3", "orders/paid:e2"), shop)
    assert second.event_id == first.event_id and not second.new
    assert other_event.new and rows(runtime) == 2


def test_a_delivery_for_no_such_shop_stores_nothing(runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    assert inbox.store(runtime.engine, delivery(), inbox.shop_by_domain("shopify", "other.myshopify.com")) is None
    assert inbox.store(runtime.engine, delivery(), inbox.shop_by_id(10_000)) is None
    assert rows(runtime) == 0


def test_concurrent_copies_of_one_delivery_store_one_row_and_all_get_its_id(runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    results: list[inbox.Stored | None] = []
    start = threading.Barrier(6)

    def send() -> None:
        start.wait()
        results.append(inbox.store(runtime.engine, delivery(), inbox.shop_by_domain("shopify", SHOP)))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and all(r is not None for r in results)
    assert sum(r.new for r in results) == 1 and len({r.event_id for r in results}) == 1
    assert rows(runtime) == 1


def test_a_redacted_shops_deliveries_are_refused_at_once_even_when_a_new_shop_gets_its_id(client, runtime) -> None:  # type: ignore[no-untyped-def]
    gone = add_shop(runtime, "gone.myshopify.com")
    body = body_of(paid_order(1))
    assert (
        client.post(
            "/webhooks/shopify",
            data=body,
            headers=headers_for("gone.myshopify.com", "orders/paid", body, SHOPIFY_SECRET),
        ).status_code
        == 200
    )
    with transaction(runtime.sessions) as session:  # as shop/redact leaves it: every row of the shop deleted
        session.execute(delete(WebhookEvent).where(WebhookEvent.shop_id == gone))
        session.execute(delete(Shop).where(Shop.id == gone))
    newcomer = add_shop(runtime, "newcomer.myshopify.com")
    if runtime.engine.dialect.name == "sqlite":
        assert newcomer == gone  # SQLite hands out the freed id again: a cached id would file it there

    body = body_of(paid_order(2))
    response = client.post(
        "/webhooks/shopify", data=body, headers=headers_for("gone.myshopify.com", "orders/paid", body, SHOPIFY_SECRET)
    )
    assert response.status_code == 404 and "not installed" in response.get_json()["error"]
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).where(WebhookEvent.shop_id == newcomer)) == 0


def test_the_receiver_binds_the_shop_only_for_the_enqueue(client, runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_shop(runtime)
    body = body_of(paid_order())
    response = client.post(
        "/webhooks/shopify", data=body, headers=headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
    )
    event_id = response.get_json()["event_id"]
    job = Job.fetch(f"event-{event_id}", connection=runtime.redis)
    assert job.meta["shop_id"] == shop_id  # per-shop fairness knew the shop without a lookup
    assert log_context.shop_id() is None  # nothing left bound for whatever this thread runs next


def test_a_new_rows_job_id_left_over_in_redis_is_replaced_not_taken_for_a_live_job(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_shop(runtime)
    stored = inbox.store(runtime.engine, delivery(), inbox.shop_by_id(shop_id))
    # A finished job under the same id, as a reused SQLite row id or a kept Redis would leave it.
    stale = Job.create(
        "jobs.events.process_event", args=(stored.event_id,), id=f"event-{stored.event_id}", connection=runtime.redis
    )
    stale.set_status(JobStatus.FINISHED)
    stale.save()
    assert enqueue_new_event(runtime, stored.event_id) is True
    job = Job.fetch(f"event-{stored.event_id}", connection=runtime.redis)
    assert job.get_status() == JobStatus.QUEUED and job.id in runtime.queue("webhooks").job_ids


def test_a_redis_failure_after_the_commit_still_answers_200_and_the_sweep_enqueues_the_delivery(
    settings, runtime
) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    no_redis = build_runtime(settings, redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5))
    client = create_app(runtime=no_redis).test_client()
    body = body_of(paid_order())
    response = client.post(
        "/webhooks/shopify", data=body, headers=headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
    )
    assert response.status_code == 200  # durably stored: acknowledged whatever Redis says
    event_id = response.get_json()["event_id"]
    no_redis.engine.dispose()
    set_runtime(runtime)
    with runtime.sessions() as session:
        assert session.get(WebhookEvent, event_id).status == "received"
    assert len(runtime.queue("webhooks")) == 0

    sweep(older_than_seconds=0)
    assert f"event-{event_id}" in runtime.queue("webhooks").job_ids


def _restart_drops_connections(runtime) -> int:  # type: ignore[no-untyped-def]
    """What a database restart or failover does to this process's pooled connections: the server
    ends every one of them (the pool does not know until it uses them). How many were ended."""
    import psycopg

    url = runtime.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(ended)


def _disconnects_seen(runtime) -> list[bool]:  # type: ignore[no-untyped-def]
    """Every error of a statement (not of SQLAlchemy's own pre-ping) from now on: whether it found
    its connection dead."""
    from sqlalchemy import event

    seen: list[bool] = []

    def record(context) -> None:  # type: ignore[no-untyped-def]
        if not context.is_pre_ping:
            seen.append(context.is_disconnect)

    event.listen(runtime.engine, "handle_error", record)
    return seen


@pytest.mark.skipif(not TEST_DB_URL.startswith("postgresql"), reason="ends server connections: PostgreSQL")
def test_a_dead_pooled_connection_under_the_insert_is_replaced_and_the_delivery_stored_once(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_shop(runtime)
    assert inbox.store(runtime.engine, delivery("w1", None), inbox.shop_by_id(shop_id)) is not None  # pooled now
    assert _restart_drops_connections(runtime) >= 1
    seen = _disconnects_seen(runtime)

    stored = inbox.store(runtime.engine, delivery("w2", None), inbox.shop_by_id(shop_id))

    assert seen == [True]  # the insert met the dead connection (it was not pinged first) ...
    assert stored is not None and (stored.new, stored.needs_job) == (True, True)  # ... and ran again
    with runtime.sessions() as session:
        assert session.scalars(select(WebhookEvent.delivery_key).order_by(WebhookEvent.id)).all() == ["w1", "w2"]


@pytest.mark.skipif(not TEST_DB_URL.startswith("postgresql"), reason="ends server connections: PostgreSQL")
def test_every_other_checkout_still_pings_and_replaces_a_dead_pooled_connection(runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    assert _restart_drops_connections(runtime) >= 1
    seen = _disconnects_seen(runtime)

    with runtime.sessions() as session:  # a page, a job: no retry of its own
        assert session.scalar(select(func.count()).select_from(Shop)) == 1

    assert seen == []  # the dead connection was found by the ping, never by a statement
