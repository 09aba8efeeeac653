"""Scheduled repairs: nothing acknowledged is ever lost.

The webhook endpoint commits the inbox row before it answers and only then enqueues; if Redis
was flushed or the enqueue failed, the row sits there. The sweep finds such rows (and orders
left ``ready``, ``pushing`` or ``cancel_requested`` with no live job) and enqueues them again.
Enqueueing uses the same deterministic job ids, so a sweep racing a live job does nothing.

A job id that exists is not proof of a live job: a retry waiting in a scheduled registry well
past its due time (``scheduled_lost_after_seconds``) has no scheduler to move it, and a job
started by a pool worker that is gone (SIGKILL) will never finish. The sweep moves the first to
its queue (retry count kept) and re-runs the second (``jobs.queues.job_is_live``). Whatever a
Redis flush took is re-created from the database: inbox rows (events), orders left ``ready`` /
``pushing`` (push) or ``cancel_requested`` (cancel), edits after push stopped mid-step (edit),
parcels whose tracking is not on the shop
(tracking); stock syncs come back from their own cron pass (``jobs.stock.enqueue_due``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimitRegistry
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from jobs import edits, states
from jobs.orders import FollowUp, enqueue_follow_ups
from jobs.queues import enqueue_new, enqueue_once, job_is_live, listed_snapshot
from jobs.runtime import Runtime, get_runtime
from jobs.tracking import enqueue_write, tracking_key
from store.models import Order, Shipment, WebhookEvent, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

EVENT_RETRY = (5, 30, 120, 600, 1800)


def enqueue_event(runtime: Runtime, event_id: int) -> bool:
    """Enqueue the inbox row's job (deterministic id ``event-<id>``); False if already live."""
    return enqueue_once(runtime, "webhooks", "jobs.events.process_event", event_id, **_event_job(event_id))


def enqueue_new_event(runtime: Runtime, event_id: int) -> bool:
    """``enqueue_event`` for an inbox row the caller inserted just now (``jobs.queues.enqueue_new``:
    no job can exist for it, so none is looked for)."""
    return enqueue_new(runtime, "webhooks", "jobs.events.process_event", event_id, **_event_job(event_id))


def _event_job(event_id: int) -> dict[str, Any]:
    from rq import Retry

    return {"job_id": f"event-{event_id}", "retry": Retry(max=len(EVENT_RETRY), interval=list(EVENT_RETRY))}


def rescue_overdue(runtime: Runtime) -> int:
    """Move every scheduled job well past its due time to its queue, whatever its kind: a
    scheduler would have done it long ago, so none is running. Returns how many were moved."""
    lost_before = int(time.time()) - runtime.settings.scheduled_lost_after_seconds
    moved = 0
    for name in runtime.queue_names:
        registry = ScheduledJobRegistry(name, connection=runtime.redis)
        for job_id in registry.get_jobs_to_schedule(lost_before):
            try:
                registry.requeue(job_id)
            except (InvalidJobOperation, NoSuchJobError):
                registry.remove(job_id)  # its hash is gone (expired or flushed): the database repairs below
                continue
            moved += 1
    if moved:
        log.warning("sweep moved %d scheduled jobs that no scheduler had run to their queues", moved)
    return moved


def free_stale_slots(runtime: Runtime) -> int:
    """Free the RQ ``RateLimit`` slots (one tracking job per order at a time) held by jobs that
    will never finish: started by a worker that died, or whose end Redis never heard of because it
    was down, or re-enqueued under the same id and now waiting for the slot it holds itself. RQ's
    own release keeps such a slot while the dead run's execution entry has not expired, so the
    order's next parcel would wait for minutes; here the holder is marked failed (the sweep
    re-creates any work it left undone from the database), its slot is taken back, and RQ's
    cleanup gives it to the next waiting job. Returns how many slots were freed."""
    freed = 0
    for registry in RateLimitRegistry.all(runtime.redis):
        for job_id in registry.get_allowed_job_ids():
            try:
                job = Job.fetch(job_id, connection=runtime.redis)
                status = job.get_status(refresh=False)
            except (NoSuchJobError, InvalidJobOperation):
                job, status = None, None
            waiting_on_itself = status == JobStatus.RATE_LIMITED
            if not waiting_on_itself and job is not None and job_is_live(runtime, job_id):
                continue
            if job is not None and status in (JobStatus.QUEUED, JobStatus.STARTED):
                job.set_status(JobStatus.FAILED)
            runtime.redis.zrem(registry.allowed_key, job_id)
            freed += 1
        registry.cleanup()  # RQ's own: waiting jobs take the free slots
    if freed:
        log.warning("sweep freed %d rate-limit slots held by jobs that will never finish", freed)
    return freed


def _each(what: str, items: Iterable[T], enqueue: Callable[[T], object]) -> int:
    """Enqueue each item, counting the ones enqueued now; one item's failure (Redis going away
    mid-sweep, a job hash an outage left unreadable) is logged and the sweep goes on."""
    done = 0
    for item in items:
        try:
            done += bool(enqueue(item))
        except Exception:  # the next sweep tries again; this one must not stop
            log.exception("sweep could not re-enqueue %s %s", what, item)
    return done


def sweep(older_than_seconds: int | None = None) -> dict[str, int]:
    """Re-enqueue unprocessed inbox rows and stuck orders whose jobs are gone, and run retries
    no scheduler moved. Idempotent."""
    runtime = get_runtime()
    rescued = rescue_overdue(runtime)
    age = older_than_seconds if older_than_seconds is not None else runtime.settings.sweep_after_seconds
    cutoff = utcnow() - timedelta(seconds=age)
    with runtime.sessions() as session:
        event_ids = session.scalars(
            select(WebhookEvent.id)
            .where(WebhookEvent.status.in_(("received", "enqueued")), WebhookEvent.received_at <= cutoff)
            .order_by(WebhookEvent.id)
            .limit(5000)
        ).all()
        unwritten = session.scalars(
            select(Shipment)
            .where(
                Shipment.tracking_number != "",
                Shipment.status != "cancelled",
                Shipment.updated_at <= cutoff,
                Shipment.updated_at >= cutoff - timedelta(days=7),  # older ones need a person, not a sweep
            )
            .limit(5000)
        ).all()
        parcels = [(s.id, s.order_id, tracking_key(s)) for s in unwritten if s.written_tracking != tracking_key(s)]
        stuck = session.execute(
            select(Order.id, Order.state, Order.generation)
            .where(
                Order.state.in_((states.READY, states.PUSHING, states.CANCEL_REQUESTED)),
                Order.updated_at <= cutoff,
            )
            .limit(5000)
        ).all()
        halfway = edits.stuck_edits(session, cutoff)  # an edit after push stopped mid-step
    slots = free_stale_slots(runtime)
    follow_ups = [
        FollowUp("cancel" if state == states.CANCEL_REQUESTED else "push", order_id, generation)
        for order_id, state, generation in stuck
    ] + [FollowUp("edit", order_id, 0, f"resume-{edit_id}") for order_id, edit_id in halfway]
    before = len(runtime.queue("orders"))
    with listed_snapshot(runtime):  # a job marked queued but in no queue list is lost too
        events = _each("event", event_ids, lambda event_id: enqueue_event(runtime, event_id))
        tracking = _each("parcel", parcels, lambda parcel: enqueue_write(runtime, *parcel))
        _each("order", follow_ups, lambda follow_up: enqueue_follow_ups(runtime, [follow_up]))
    orders = len(runtime.queue("orders")) - before
    if events or orders or tracking:
        log.warning("sweep re-enqueued %d events, %d orders, %d parcels whose jobs were lost", events, orders, tracking)
    return {"events": events, "orders": max(orders, 0), "tracking": tracking, "rescued": rescued, "slots": slots}
