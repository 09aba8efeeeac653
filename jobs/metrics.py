"""The RQ callbacks every Relais job carries (``jobs.fairness.CALLBACKS``, set at enqueue).

When a job ends for good they record, in Redis (``store.metrics``), how long it took from its
enqueue (``created_at``: retries and their waits included, which is what an order waits) and, for
a failure, its function; and they take it out of its shop's backlog (``jobs.fairness``).

RQ 3 runs ``on_failure`` after every raised exception, also when a retry follows, and after a
shutdown interrupted the job (``jobs.worker`` puts that one back in its queue): neither is an
end. A job that returns a ``Retry`` runs no callback until its last run. A callback must never
raise: RQ would record the callback's error in place of the job's own.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from rq.exceptions import ShutDownImminentException
from rq.job import Job
from rq.utils import now

from jobs import fairness
from store import metrics

log = logging.getLogger(__name__)


def job_succeeded(job: Job, connection: redis.Redis, result: Any) -> None:
    _ended(job, connection, failed=False)


def job_failed(job: Job, connection: redis.Redis, exc_type: Any = None, *exc: Any) -> None:
    if job.should_retry:
        return  # RQ schedules it again: still this shop's work
    if isinstance(exc_type, type) and issubclass(exc_type, (ShutDownImminentException, SystemExit)):
        return  # the worker stopped mid-job and puts it back in its queue
    _ended(job, connection, failed=True)


def job_stopped(job: Job, connection: redis.Redis) -> None:
    _ended(job, connection, failed=True)


def _ended(job: Job, connection: redis.Redis, *, failed: bool) -> None:
    """Latency, failure count and fair-share release in one round trip (a pipeline, not a
    transaction: a metric refused by Redis does not keep the release from being applied)."""
    try:
        function = job.func_name or "unknown"
        with connection.pipeline(transaction=False) as pipe:
            if job.created_at is not None:
                seconds = (now() - job.created_at).total_seconds()
                metrics.add_observation(pipe, metrics.JOB_LATENCY, function, seconds)
            if failed:
                metrics.count(pipe, metrics.JOB_FAILURES, function)
            fairness.release(pipe, (job.meta or {}).get("shop_id"), job.id)
            pipe.execute()
    except Exception:  # never let bookkeeping replace the job's own outcome
        log.exception("job %s: its metrics or fair-share release failed", job.id)
