"""Enqueueing with deterministic job ids, so that a repeat enqueue is harmless.

A job id names the work (``event-12``, ``push-7-1``): while such a job is queued, scheduled or
running, enqueueing it again does nothing; once it has finished or failed, a new one may run
(the sweep and the merchant's "retry" rely on that).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from rq import Retry, get_current_job
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from jobs.runtime import Runtime

log = logging.getLogger(__name__)

LIVE = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED})


def job_is_live(runtime: Runtime, job_id: str) -> bool:
    """True while a job with this id is waiting, scheduled for a retry, or running."""
    try:
        job = Job.fetch(job_id, connection=runtime.redis)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    return status in LIVE or str(status) in {"rate_limited"}


def enqueue_once(runtime: Runtime, queue: str, func: str, *args: Any, job_id: str, **options: Any) -> bool:
    """Enqueue ``func(*args)`` as ``job_id`` unless that job is live; True when enqueued now."""
    if job_is_live(runtime, job_id):
        return False
    q = runtime.queue(queue)
    try:
        old = Job.fetch(job_id, connection=runtime.redis)
        old.delete()  # finished or failed long ago: make room for a fresh run
    except NoSuchJobError:
        pass
    # RQ refuses unique=True with a rate limit; the liveness check above is then the guard.
    unique = "rate_limit" not in options
    try:
        q.enqueue(func, *args, job_id=job_id, unique=unique, **options)
    except DuplicateJobError:
        return False
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
