"""Jobs Redis says are waiting or running, but that nothing will ever run, are found and run.

A tracking job that will never finish must not hold its order's one-at-a-time slot forever.

Found by the fault drill: Redis stopped while a parcel's tracking write ran; the write reached the
shop and committed, but the job's end never reached Redis, so RQ's ``RateLimit`` slot of that
order stayed taken and the order's next parcel waited behind it for good.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq.job import Job, JobStatus
from rq.rate_limit import RateLimit

from jobs.maintenance import enqueue_event, free_stale_slots, sweep
from jobs.queues import job_is_live
from jobs.scheduling import KNOWN_WORKER_KEY
from store.db import transaction
from store.models import WebhookEvent, utcnow
from store.shops import upsert_shop


def noop() -> str:
    return "done"


def test_a_slot_held_by_a_job_of_a_dead_worker_goes_to_the_next_job_of_the_order(runtime) -> None:  # type: ignore[no-untyped-def]
    queue = runtime.queue("tracking")
    limit = RateLimit("relais:order-tracking:test-order", 1)
    first = queue.enqueue(noop, job_id="write-1", rate_limit=limit)
    second = queue.enqueue(noop, job_id="write-2", rate_limit=limit)
    assert second.get_status() == JobStatus.RATE_LIMITED
    # The first ran on a pool worker that then died (its liveness key expired with it).
    runtime.redis.set(KNOWN_WORKER_KEY.format("pool-worker-gone"), 1)
    first.set_status(JobStatus.STARTED)
    first.worker_name = "pool-worker-gone"
    first.save()

    assert free_stale_slots(runtime) == 1

    assert Job.fetch("write-1", connection=runtime.redis).get_status() == JobStatus.FAILED
    assert Job.fetch("write-2", connection=runtime.redis).get_status() == JobStatus.QUEUED


def test_a_slot_held_by_a_job_still_running_on_a_live_worker_is_kept(runtime) -> None:  # type: ignore[no-untyped-def]
    queue = runtime.queue("tracking")
    limit = RateLimit("relais:order-tracking:busy-order", 1)
    first = queue.enqueue(noop, job_id="busy-1", rate_limit=limit)
    queue.enqueue(noop, job_id="busy-2", rate_limit=limit)
    first.set_status(JobStatus.STARTED)
    first.worker_name = "some-rq-worker-outside-the-pool"  # never declared dead
    first.save()

    assert free_stale_slots(runtime) == 0
    assert Job.fetch("busy-2", connection=runtime.redis).get_status() == JobStatus.RATE_LIMITED


def test_a_job_marked_queued_that_no_queue_holds_is_re_enqueued_by_the_sweep(runtime) -> None:  # type: ignore[no-untyped-def]
    """Also found by the drill: Redis restored from its saved data set between RQ's two writes
    left a tracking job ``queued`` in no list; nothing counted it as lost."""
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(session, runtime.vault, "shopify", "lost.myshopify.com", {"access_token": "x"}, "", {})
        event = WebhookEvent(
            source="shopify", delivery_key="lost:1", shop_id=shop.id, topic="orders/paid", headers={}, body=b"{}"
        )
        session.add(event)
        session.flush()
        event_id = event.id
        event.received_at = utcnow() - timedelta(minutes=5)
    enqueue_event(runtime, event_id)
    job = Job.fetch(f"event-{event_id}", connection=runtime.redis)
    runtime.redis.lrem(runtime.queue(job.origin).key, 0, job.id)  # the list lost it, the hash did not
    job.enqueued_at = datetime.now(UTC) - timedelta(minutes=5)
    job.save()
    assert job_is_live(runtime, job.id)  # outside a sweep, the status is trusted

    assert sweep()["events"] == 1

    assert job.id in runtime.queue(job.origin).job_ids


def test_a_queued_job_still_in_its_queue_is_left_alone_by_the_sweep(runtime) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(session, runtime.vault, "shopify", "kept.myshopify.com", {"access_token": "x"}, "", {})
        event = WebhookEvent(
            source="shopify", delivery_key="kept:1", shop_id=shop.id, topic="orders/paid", headers={}, body=b"{}"
        )
        session.add(event)
        session.flush()
        event_id = event.id
        event.received_at = utcnow() - timedelta(minutes=5)
    enqueue_event(runtime, event_id)

    assert sweep()["events"] == 0
    assert runtime.queue("webhooks").job_ids.count(f"event-{event_id}") == 1


def test_a_job_re_enqueued_under_the_id_of_the_slot_holder_is_not_left_waiting_on_itself(runtime) -> None:  # type: ignore[no-untyped-def]
    """The drill's last stuck parcel: its job died holding the order's slot, the sweep enqueued it
    again under the same id, and it waited for the slot it held itself."""
    queue = runtime.queue("tracking")
    limit = RateLimit("relais:order-tracking:self-order", 1)
    first = queue.enqueue(noop, job_id="self-1", rate_limit=limit)
    runtime.redis.set(KNOWN_WORKER_KEY.format("pool-worker-killed"), 1)
    first.set_status(JobStatus.STARTED)
    first.worker_name = "pool-worker-killed"
    first.save()
    runtime.redis.delete(first.key)  # its hash lost, its slot not (the sweep then enqueues it again)
    again = queue.enqueue(noop, job_id="self-1", rate_limit=limit)
    assert again.get_status() == JobStatus.RATE_LIMITED

    assert free_stale_slots(runtime) == 1

    assert Job.fetch("self-1", connection=runtime.redis).get_status() == JobStatus.QUEUED
