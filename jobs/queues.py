"""Enqueueing with deterministic job ids, so that a repeat enqueue is harmless.

A job id names the work (``event-12``, ``push-7-1``): while such a job is queued, scheduled or
running, enqueueing it again does nothing; once it has finished or failed, a new one may run
(the sweep and the merchant's "retry" rely on that).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from rq import Retry, get_current_job
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from jobs import fairness, one_trip
from jobs.runtime import Runtime
from jobs.scheduling import worker_is_dead

log = logging.getLogger(__name__)

# Rate limited: waiting for its order's slot (``jobs.maintenance.free_stale_slots`` frees a slot
# whose holder will never finish).
LIVE = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.RATE_LIMITED})


def job_is_live(runtime: Runtime, job_id: str, *, exact: bool = False) -> bool:
    """True while a job with this id is waiting, scheduled for a retry, or running.

    Not live although its status says so: a retry well past its due time (no scheduler is moving
    it: the scheduler died, or the registry entry was lost) and a job started by a pool worker
    that is no longer alive (SIGKILLed mid-job). The sweep re-runs those. A job marked queued is
    checked against the queue lists only during a sweep, or with ``exact`` (one ``LPOS`` on its
    own queue): for a caller that waits on the job and that the sweep would not otherwise free."""
    try:
        job = Job.fetch(job_id, connection=runtime.redis)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.SCHEDULED and _scheduled_lost(runtime, job):
        return False
    if status == JobStatus.STARTED and worker_is_dead(runtime.redis, job.worker_name):
        return False
    if status == JobStatus.QUEUED and _queued_lost(runtime, job, exact):
        return False
    return status in LIVE


def run_now(runtime: Runtime, job_id: str) -> bool:
    """Move a job waiting in a scheduled registry (a retry, a delayed run) to its queue now, its
    retry count kept. False when it is in none (running, finished, or never scheduled)."""
    for name in runtime.queue_names:
        registry = ScheduledJobRegistry(name, connection=runtime.redis)
        if job_id not in registry:
            continue
        try:
            registry.requeue(job_id)
        except (InvalidJobOperation, NoSuchJobError):
            return False  # ran or expired meanwhile: nothing to hurry
        return True
    return False


#: During a sweep: every job id found in a queue or RQ's intermediate list at its start.
_listed: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar("listed_job_ids", default=None)


@contextlib.contextmanager
def listed_snapshot(runtime: Runtime) -> Iterator[None]:
    """Within the block, a job marked queued that is in no queue list (read once, here) and was
    enqueued well before counts as lost: Redis went down or was restored between RQ's two writes
    (the job's hash and the list), so no worker will ever take it. Outside a sweep the status is
    trusted, since reading every list for one job would cost too much."""
    ids: set[str] = set()
    for name in runtime.queue_names:
        queue = runtime.queue(name)
        for key in (queue.key, queue.intermediate_queue_key):
            ids.update(job_id.decode() for job_id in runtime.redis.lrange(key, 0, -1))
    token = _listed.set(frozenset(ids))
    try:
        yield
    finally:
        _listed.reset(token)


def _queued_lost(runtime: Runtime, job: Job, exact: bool) -> bool:
    listed = _listed.get()
    if listed is None and exact and job.origin in runtime.queue_names:
        queue = runtime.queue(job.origin)
        with runtime.redis.pipeline(transaction=False) as pipe:
            pipe.lpos(queue.key, job.id)
            pipe.lpos(queue.intermediate_queue_key, job.id)
            listed = frozenset() if pipe.execute() == [None, None] else frozenset((job.id,))
    if listed is None or job.id in listed or job.enqueued_at is None:
        return False
    enqueued = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=UTC)
    return (datetime.now(UTC) - enqueued).total_seconds() > runtime.settings.scheduled_lost_after_seconds


def _scheduled_lost(runtime: Runtime, job: Job) -> bool:
    """A scheduled job whose due time passed more than ``scheduled_lost_after_seconds`` ago, or
    that is in no scheduled registry at all: nothing will ever move it back to its queue."""
    score = runtime.redis.zscore(ScheduledJobRegistry(job.origin, connection=runtime.redis).key, job.id)
    return score is None or time.time() - score > runtime.settings.scheduled_lost_after_seconds


def _rescue_scheduled(runtime: Runtime, job: Job) -> bool:
    """Move a lost scheduled job to its queue as the scheduler would (its retry count kept);
    False when it is not in the registry any more."""
    registry = ScheduledJobRegistry(job.origin, connection=runtime.redis)
    score = runtime.redis.zscore(registry.key, job.id)
    try:
        registry.requeue(job)
    except InvalidJobOperation:
        return False
    late = time.time() - (score or time.time())
    log.warning("job %s was %.0f s past its due time with no scheduler: moved to its queue", job.id, late)
    return True


def enqueue_once(runtime: Runtime, queue: str, func: str, *args: Any, job_id: str, **options: Any) -> bool:
    """Enqueue ``func(*args)`` as ``job_id`` unless that job is live; True when enqueued now."""
    if job_is_live(runtime, job_id):
        return False
    queue, options = fairness.route(runtime, queue, func, args, job_id, options)  # per-shop fair share, callbacks
    q = runtime.queue(queue)
    try:
        old = Job.fetch(job_id, connection=runtime.redis)
        if old.get_status(refresh=False) == JobStatus.SCHEDULED and _rescue_scheduled(runtime, old):
            return True
        # Finished or failed long ago, or lost with a dead worker: make room for a fresh run. A
        # hash left half-written by an outage cannot be read back; enqueueing overwrites it.
        with contextlib.suppress(InvalidJobOperation):
            old.delete()
    except NoSuchJobError:
        pass
    # RQ refuses unique=True with a rate limit; the liveness check above is then the guard.
    unique = "rate_limit" not in options
    try:
        q.enqueue(func, *args, job_id=job_id, unique=unique, **options)
    except DuplicateJobError:
        return False
    return True


def enqueue_new(runtime: Runtime, queue: str, func: str, *args: Any, job_id: str, **options: Any) -> bool:
    """Enqueue the job of a row inserted just now, whose job cannot exist yet: no liveness check
    and no fetch of an old job, one atomic unique enqueue (a shop's job: admitted to its fair
    share in the same round trip, ``jobs.one_trip``). Should RQ still hold a job under this id (a
    stale one: a reused SQLite row id, a Redis kept across a database reset), it falls back to
    ``enqueue_once``, which judges that job. True when enqueued now.

    So it is ``enqueue_once`` for any job whose id is new in the common case (an order's push or
    cancel, named by its generation: ``jobs.orders.enqueue_follow_ups``), in one round trip
    instead of five when no job holds the id."""
    if "rate_limit" in options:  # RQ refuses unique=True with a rate limit: only the checked path
        return enqueue_once(runtime, queue, func, *args, job_id=job_id, **options)
    enqueued = one_trip.enqueue_new(runtime, queue, func, args, job_id, options)
    if enqueued is not None:
        return enqueued or enqueue_once(runtime, queue, func, *args, job_id=job_id, **options)
    routed, routed_options = fairness.route(runtime, queue, func, args, job_id, options)
    try:
        runtime.queue(routed).enqueue(func, *args, job_id=job_id, unique=True, **routed_options)
    except DuplicateJobError:
        return enqueue_once(runtime, queue, func, *args, job_id=job_id, **options)
    return True


def next_retry(runtime: Runtime, retry_after: float | None) -> Retry | None:
    """The ``Retry`` a job returns to run again after a transient failure, or None when the
    current job has used all its retries. The wait grows with each retry (RELAIS_RETRY_BACKOFF);
    a party's own retry-after wins when longer."""
    job = get_current_job()
    done = (job.number_of_retries or 0) if job else 0
    max_retries = runtime.settings.push_max_retries
    if done >= max_retries:
        return None
    backoff = runtime.settings.retry_backoff
    wait = backoff[min(done, len(backoff) - 1)]
    if retry_after is not None:
        # RQ stores the due time in whole seconds, rounded down: one more second keeps the retry
        # from running before the party's retry-after has passed.
        wait = max(wait, math.ceil(retry_after) + 1)
    return Retry(max=max_retries, interval=wait)


def attempts_so_far() -> int:
    """How many times the current job has already run (1 on its first run)."""
    job = get_current_job()
    return ((job.number_of_retries or 0) if job else 0) + 1


def for_each_active_shop(runtime: Runtime, queue: str, func: str, job_prefix: str, **options: Any) -> int:
    """Cron fan-out: one job per active shop, ids ``<prefix>-<shop id>`` so a slow one is never
    doubled. Returns how many were enqueued now."""
    from sqlalchemy import select

    from store.models import Shop

    with runtime.sessions() as session:
        ids = session.scalars(select(Shop.id).where(Shop.status == "active").order_by(Shop.id)).all()
    return sum(
        enqueue_once(runtime, queue, func, shop_id, job_id=f"{job_prefix}-{shop_id}", **options) for shop_id in ids
    )
