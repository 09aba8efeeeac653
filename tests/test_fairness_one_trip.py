"""A new row's job admitted to its shop's fair share and enqueued in one round trip
(``jobs.one_trip``): what it writes to Redis is what RQ's own enqueue and the fair-share routing
write, key for key, on either queue; over the share it routes to the -bulk twin, prunes when due,
and every job still leaves its shop's backlog when it ends."""

from __future__ import annotations

from typing import Any

import pytest
from rq import Retry, SimpleWorker
from rq.job import Job

from config import log_context
from jobs import fairness, one_trip
from jobs.maintenance import enqueue_new_event
from tests.conftest import drain
from tests.test_fairness import IMPORT, SHARE, a_shop, processed, stored_orders

FUNC = "jobs.events.process_event"
_STAMPS = {b"created_at", b"enqueued_at"}  # when: differs between any two enqueues


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(fair_share=SHARE)


def keyspace(client) -> dict[bytes, Any]:  # type: ignore[no-untyped-def]
    """Everything in Redis, comparable across runs: timestamps and sorted-set scores left out."""
    found: dict[bytes, Any] = {}
    for key in client.keys("*"):
        kind = client.type(key)
        if kind == b"hash":
            found[key] = {k: v for k, v in client.hgetall(key).items() if k not in _STAMPS}
        elif kind == b"list":
            found[key] = client.lrange(key, 0, -1)
        elif kind == b"set":
            found[key] = client.smembers(key)
        elif kind == b"zset":
            found[key] = client.zrange(key, 0, -1)
        else:
            found[key] = (kind, client.ttl(key) > 0)
    return found


def options() -> dict[str, Any]:
    return {"retry": Retry(max=3, interval=[10, 60, 300])}


def over_the_share(runtime, shop_id: int, pruned_lately: bool) -> None:  # type: ignore[no-untyped-def]
    runtime.redis.flushdb()
    runtime.redis.zadd(fairness.backlog_key(shop_id), {f"event-{n}": 1.0 for n in range(1, SHARE + 1)})
    if pruned_lately:
        runtime.redis.set(f"{fairness.PRUNE_PREFIX}{shop_id}", "1", ex=fairness.PRUNE_EVERY_SECONDS)


def rq_own_way(runtime, shop_id: int, job_id: str) -> None:  # type: ignore[no-untyped-def]
    """The ordinary way: fair-share routing, then RQ's unique enqueue."""
    with log_context.bound(shop_id=shop_id):
        queue, routed = fairness.route(runtime, "webhooks", FUNC, (7,), job_id, options())
        runtime.queue(queue).enqueue(FUNC, 7, job_id=job_id, unique=True, **routed)


def one_trip_way(runtime, shop_id: int, job_id: str) -> bool | None:  # type: ignore[no-untyped-def]
    with log_context.bound(shop_id=shop_id):
        return one_trip.enqueue_new(runtime, "webhooks", FUNC, (7,), job_id, options())


@pytest.fixture
def first_of_its_kind() -> None:
    """No job kind has a template yet: the next job is built by RQ (and makes the template)."""
    one_trip._templates.clear()


@pytest.mark.parametrize("backlog", ["empty", "over the share"])
def test_one_trip_writes_what_rq_and_the_fair_share_routing_write(runtime, backlog: str, first_of_its_kind) -> None:  # type: ignore[no-untyped-def]
    shop_id = a_shop(runtime, "one.myshopify.com")
    ways = {}
    # RQ's own enqueue; then one trip with a job RQ builds; then one with a job from the template.
    for name, way in (("rq", rq_own_way), ("one trip", one_trip_way), ("one trip, template", one_trip_way)):
        runtime.redis.flushdb()
        if backlog == "over the share":
            over_the_share(runtime, shop_id, pruned_lately=True)
        way(runtime, shop_id, "event-7")
        ways[name] = keyspace(runtime.redis)
    assert ways["one trip"] == ways["rq"]
    assert ways["one trip, template"] == ways["rq"]
    assert [template for template in one_trip._templates.values() if template]  # the third did use one
    queue = "webhooks" if backlog == "empty" else "webhooks-bulk"
    assert ways["rq"][f"rq:queue:{queue}".encode()] == [b"event-7"]  # and the comparison saw that queue
    job = Job.fetch("event-7", connection=runtime.redis)
    assert (job.origin, job.meta, job.retries_left, job.args) == (queue, {"shop_id": shop_id}, 3, (7,))


def test_a_job_rq_already_holds_is_left_to_the_caller_and_nothing_is_written(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = a_shop(runtime, "one.myshopify.com")
    assert one_trip_way(runtime, shop_id, "event-6") is True  # the kind's template made
    assert one_trip_way(runtime, shop_id, "event-7") is True
    before = keyspace(runtime.redis)
    assert one_trip_way(runtime, shop_id, "event-7") is False
    assert keyspace(runtime.redis) == before  # same hash, listed once, admitted once


def test_a_shop_over_its_share_not_pruned_lately_is_pruned_then_routed(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = a_shop(runtime, "one.myshopify.com")
    over_the_share(runtime, shop_id, pruned_lately=False)  # entries of jobs long gone (scores at 1970)

    assert one_trip_way(runtime, shop_id, "event-7") is True

    assert fairness.backlog(runtime.redis, shop_id) == 1  # the gone ones dropped: under the share again
    assert runtime.queue("webhooks").job_ids == ["event-7"] and len(runtime.queue("webhooks-bulk")) == 0
    assert runtime.redis.exists(f"{fairness.PRUNE_PREFIX}{shop_id}")  # not judged again for a while


def test_a_job_kind_whose_hash_the_template_cannot_rebuild_keeps_rqs_way(
    runtime, first_of_its_kind, monkeypatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    """As after an RQ upgrade that writes a field per job that the template does not know."""
    shop_id = a_shop(runtime, "one.myshopify.com")
    upgraded = Job.to_dict
    monkeypatch.setattr(Job, "to_dict", lambda job, **kw: {**upgraded(job, **kw), "new_field": job.id})

    assert one_trip_way(runtime, shop_id, "event-7") is True
    assert one_trip_way(runtime, shop_id, "event-8") is True

    assert list(one_trip._templates.values()) == [None]
    assert "not what the template rebuilds" in caplog.text
    assert runtime.redis.hget("rq:job:event-8", "new_field") == b"event-8"  # RQ built it


def test_jobs_of_other_queues_or_of_no_shop_take_the_ordinary_way(runtime) -> None:  # type: ignore[no-untyped-def]
    assert one_trip.enqueue_new(runtime, "maintenance", "jobs.maintenance.sweep", (), "sweep", {}) is None
    assert one_trip.enqueue_new(runtime, "webhooks", "jobs.nowhere.job", ("x",), "x", {}) is None  # no shop
    assert keyspace(runtime.redis) == {}


def test_a_receivers_import_goes_bulk_past_the_share_and_every_job_leaves_the_backlog(runtime) -> None:  # type: ignore[no-untyped-def]
    big, small = a_shop(runtime, "big.myshopify.com"), a_shop(runtime, "small.myshopify.com")
    for event_id in stored_orders(runtime, big, 1000, IMPORT):
        with log_context.bound(shop_id=big):  # as the receiver binds it
            assert enqueue_new_event(runtime, event_id) is True
    [late] = stored_orders(runtime, small, 5000, 1)
    with log_context.bound(shop_id=small):
        assert enqueue_new_event(runtime, late) is True

    assert len(runtime.queue("webhooks")) == SHARE + 1  # the big shop's fair share, then the small shop's
    assert len(runtime.queue("webhooks-bulk")) == IMPORT - SHARE
    assert fairness.backlog(runtime.redis, big) == IMPORT and fairness.backlog(runtime.redis, small) == 1

    worker = SimpleWorker([runtime.queue(n) for n in runtime.queue_names], connection=runtime.redis)
    while processed(runtime, small) == 0:
        assert worker.work(burst=True, max_jobs=1, logging_level="WARNING")
    assert processed(runtime, big) <= SHARE
    drain(runtime)
    assert processed(runtime, big) == IMPORT and processed(runtime, small) == 1
    assert fairness.backlog(runtime.redis, big) == 0 and fairness.backlog(runtime.redis, small) == 0
