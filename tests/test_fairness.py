"""Per-shop fairness: a shop's big import goes to the -bulk queues past its fair share, so another
shop's next order is processed before the import drains; the backlog counters return to zero."""

from __future__ import annotations

import pytest
from rq import Retry, SimpleWorker
from rq.job import Job

from config import log_context
from jobs import fairness
from jobs.maintenance import enqueue_event
from jobs.queues import enqueue_once
from store.db import transaction
from store.models import Order, Shop, WebhookEvent
from tests.conftest import drain
from tests.fakes.shopify_webhooks import body_of, paid_order

SHARE = 5
IMPORT = 30


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(fair_share=SHARE)


def a_shop(runtime, domain: str) -> int:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shop = Shop(platform="shopify", domain=domain, provider="", settings={})  # no provider: orders held
        shop.provider_options_enc = runtime.vault.seal({})
        session.add(shop)
        session.flush()
        return shop.id


def stored_orders(runtime, shop_id: int, first: int, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        rows = [
            WebhookEvent(
                source="shopify",
                delivery_key=f"{shop_id}:{n}",
                shop_id=shop_id,
                topic="orders/paid",
                headers={},
                body=body_of(paid_order(n)),
            )
            for n in range(first, first + count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def processed(runtime, shop_id: int) -> int:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.query(Order).filter_by(shop_id=shop_id).count()


def test_a_small_shops_order_is_processed_before_a_big_import_drains(runtime) -> None:  # type: ignore[no-untyped-def]
    big, small = a_shop(runtime, "big.myshopify.com"), a_shop(runtime, "small.myshopify.com")
    for event_id in stored_orders(runtime, big, 1000, IMPORT):
        enqueue_event(runtime, event_id)
    [late] = stored_orders(runtime, small, 5000, 1)
    enqueue_event(runtime, late)  # arrives after the whole import

    assert len(runtime.queue("webhooks")) == SHARE + 1  # the big shop's fair share, then the small shop's
    assert len(runtime.queue("webhooks-bulk")) == IMPORT - SHARE
    assert Job.fetch(f"event-{late}", connection=runtime.redis).origin == "webhooks"
    assert fairness.backlog(runtime.redis, big) == IMPORT and fairness.backlog(runtime.redis, small) == 1

    worker = SimpleWorker([runtime.queue(n) for n in runtime.queue_names], connection=runtime.redis)
    big_before_small = 0
    while processed(runtime, small) == 0:
        assert worker.work(burst=True, max_jobs=1, logging_level="WARNING")
        big_before_small = processed(runtime, big)
    assert big_before_small <= SHARE < IMPORT  # without fair share: all 30 first

    drain(runtime)
    assert processed(runtime, big) == IMPORT and processed(runtime, small) == 1
    assert fairness.backlog(runtime.redis, big) == 0 and fairness.backlog(runtime.redis, small) == 0


def test_without_a_fair_share_the_import_comes_first(runtime) -> None:  # type: ignore[no-untyped-def]
    runtime.settings = runtime.settings.with_(fair_share=0)
    big, small = a_shop(runtime, "big.myshopify.com"), a_shop(runtime, "small.myshopify.com")
    for event_id in stored_orders(runtime, big, 1000, 10):
        enqueue_event(runtime, event_id)
    enqueue_event(runtime, stored_orders(runtime, small, 5000, 1)[0])
    assert len(runtime.queue("webhooks")) == 11 and len(runtime.queue("webhooks-bulk")) == 0


def fails_twice(key: str) -> str:
    from jobs.runtime import get_runtime

    if get_runtime().redis.incr(f"test:fair:{key}") <= 2:
        raise RuntimeError("not yet")
    return "done"


def always_fails(key: str) -> str:
    raise RuntimeError("never")


def test_a_job_leaves_its_shops_backlog_only_when_it_ends_for_good(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = a_shop(runtime, "one.myshopify.com")
    log_context.bind(shop_id=shop_id)  # as a job of this shop enqueueing its follow-ups
    try:
        enqueue_once(runtime, "orders", "tests.test_fairness.fails_twice", "a", job_id="retried", retry=Retry(max=3))
        enqueue_once(runtime, "orders", "tests.test_fairness.always_fails", "b", job_id="dead")
    finally:
        log_context.clear()
    assert fairness.backlog(runtime.redis, shop_id) == 2

    worker = SimpleWorker([runtime.queue("orders")], connection=runtime.redis)
    worker.work(burst=True, max_jobs=2, logging_level="WARNING")  # first run of each: one retries, one is dead
    assert fairness.backlog(runtime.redis, shop_id) == 1  # the retrying one is still this shop's work
    drain(runtime)
    assert Job.fetch("retried", connection=runtime.redis).get_status() == "finished"
    assert fairness.backlog(runtime.redis, shop_id) == 0


def test_an_entry_whose_job_ended_without_its_callback_is_pruned(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = a_shop(runtime, "one.myshopify.com")
    runtime.redis.zadd(fairness.backlog_key(shop_id), {f"lost-{n}": 1.0 for n in range(SHARE + 3)})  # SIGKILLed
    assert fairness.prune(runtime.redis, shop_id) == 0
