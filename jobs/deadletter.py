"""The dead letters: what Relais could not process, with why, and its replay.

Two kinds: jobs that failed for good (RQ's ``FailedJobRegistry`` of every queue: no retry left,
or an error no retry fixes), and stored deliveries that did not go through (``webhook_events``
``failed``, or still ``received``/``enqueued`` long after the sweep should have run them). Each
is shown with its function or topic, its arguments (ids only: jobs carry nothing else) and the
last line of its error, scrubbed of credentials (``store.scrub``).

Replay is idempotent: a job goes back to its queue under its own id (a second replay finds it no
longer failed and does nothing); a delivery goes through ``jobs.maintenance.enqueue_event``
(deterministic job id ``event-<id>``) and ``process_event`` skips a row already processed. Both
the CLI (``flask deadletter``) and the merchant's page (``/app``, that shop's only) use this.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import or_, select

from jobs.fairness import shop_of_row
from jobs.maintenance import enqueue_event
from jobs.runtime import Runtime
from store.db import transaction
from store.models import WebhookEvent, utcnow
from store.scrub import scrub

log = logging.getLogger(__name__)

EVENT_PREFIX = "event:"
STUCK_AFTER = timedelta(minutes=15)  # the sweep re-enqueues after a minute: this long means it cannot
REASON_LENGTH = 300
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class DeadLetter:
    ref: str  # what `replay` takes: a job id, or "event:<id>"
    kind: str  # job | event
    shop_id: int | None
    what: str  # the job's function, or the delivery's source and topic
    args: str  # ids only
    reason: str
    at: datetime | None


def last_line(text: str | None) -> str:
    """The last non-empty line of an error (the exception's own message), scrubbed and bounded."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return ""
    line = scrub(lines[-1])
    return line if len(line) <= REASON_LENGTH else line[: REASON_LENGTH - 1] + "…"


def _ids(args: Any) -> str:
    """A job's arguments as the page may show them: ids (ints, short plain strings) only."""
    shown = [str(a) if isinstance(a, int) or (isinstance(a, str) and _ID.match(a)) else "…" for a in args or ()]
    return ", ".join(shown)


def _job_reason(job: Job) -> str:
    result = job.latest_result()
    text = last_line(result.exc_string if result is not None else None)
    if text:
        return text
    retries = job.number_of_retries or 0
    return f"gave up after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else "failed"


def failed_jobs(runtime: Runtime, shop_id: int | None = None, limit: int = 200) -> list[DeadLetter]:
    """Jobs in the failed registry of every queue, newest first (at most ``limit``); of one shop
    when ``shop_id`` is given (from the job's meta, else the row its first argument names)."""
    found: list[DeadLetter] = []
    for name in runtime.queue_names:
        registry = FailedJobRegistry(name, connection=runtime.redis)
        ids = registry.get_job_ids(0, 999, desc=True, cleanup=False)
        for job in Job.fetch_many(ids, connection=runtime.redis):
            if job is None:
                continue
            owner = (job.meta or {}).get("shop_id")
            if owner is None:
                owner = shop_of_row(runtime, job.func_name, job.args)
            if shop_id is not None and owner != shop_id:
                continue
            found.append(
                DeadLetter(
                    ref=job.id,
                    kind="job",
                    shop_id=owner,
                    what=job.func_name,
                    args=_ids(job.args),
                    reason=_job_reason(job),
                    at=job.ended_at,
                )
            )
    found.sort(key=lambda d: _aware(d.at), reverse=True)
    return found[:limit]


def failed_events(runtime: Runtime, shop_id: int | None = None, limit: int = 200) -> list[DeadLetter]:
    """Deliveries whose processing failed, or that are still unprocessed ``STUCK_AFTER`` after
    they arrived, newest first."""
    stuck_before = utcnow() - STUCK_AFTER
    query = (
        select(WebhookEvent)
        .where(
            or_(
                WebhookEvent.status == "failed",
                WebhookEvent.status.in_(("received", "enqueued")) & (WebhookEvent.received_at <= stuck_before),
            )
        )
        .order_by(WebhookEvent.id.desc())
        .limit(limit)
    )
    if shop_id is not None:
        query = query.where(WebhookEvent.shop_id == shop_id)
    with runtime.sessions() as session:
        rows = session.scalars(query).all()
        return [
            DeadLetter(
                ref=f"{EVENT_PREFIX}{row.id}",
                kind="event",
                shop_id=row.shop_id,
                what=f"{row.source} {row.topic}",
                args=str(row.id),
                reason=last_line(row.error)
                if row.status == "failed"
                else f"not processed since {row.received_at:%Y-%m-%d %H:%M} UTC",
                at=row.processed_at or row.received_at,
            )
            for row in rows
        ]


def dead_letters(runtime: Runtime, shop_id: int | None = None, limit: int = 200) -> list[DeadLetter]:
    """Failed jobs, then failed or stuck deliveries; a delivery whose own job is listed as failed
    is shown once, as that job (its error is the reason)."""
    jobs = failed_jobs(runtime, shop_id, limit)
    listed = {d.ref for d in jobs}
    events = [e for e in failed_events(runtime, shop_id, limit) if f"event-{e.args}" not in listed]
    return (jobs + events)[:limit]


def replay(runtime: Runtime, ref: str, shop_id: int | None = None) -> str:
    """Run one dead letter again; what happened, in words. With ``shop_id`` (the merchant's page)
    only that shop's own letters are replayed: anything else reads as not found."""
    if ref.startswith(EVENT_PREFIX):
        return _replay_event(runtime, ref[len(EVENT_PREFIX) :], shop_id)
    return _replay_job(runtime, ref, shop_id)


def replay_all(runtime: Runtime) -> list[str]:
    """Every dead letter replayed once; one line per letter."""
    return [f"{d.ref}: {replay(runtime, d.ref)}" for d in dead_letters(runtime, limit=10_000)]


def _replay_event(runtime: Runtime, raw_id: str, shop_id: int | None) -> str:
    if not raw_id.isdigit():
        return "not found"
    event_id = int(raw_id)
    with transaction(runtime.sessions) as session:
        row = session.get(WebhookEvent, event_id, with_for_update=True)
        if row is None or (shop_id is not None and row.shop_id != shop_id):
            return "not found"
        if row.status in ("processed", "ignored"):
            return f"already {row.status}: nothing to replay"
        if row.status == "failed":
            row.status, row.error = "received", None
    queued = enqueue_event(runtime, event_id)
    log.info("dead letter event %s replayed (%s)", event_id, "queued" if queued else "already queued")
    return "queued again" if queued else "already queued"


def _replay_job(runtime: Runtime, job_id: str, shop_id: int | None) -> str:
    try:
        job = Job.fetch(job_id, connection=runtime.redis)
    except NoSuchJobError:
        return "not found"
    if shop_id is not None:
        owner = (job.meta or {}).get("shop_id")
        if owner is None:
            owner = shop_of_row(runtime, job.func_name, job.args)
        if owner != shop_id:
            return "not found"
    if job.origin not in runtime.queue_names:
        return "not found"
    try:
        FailedJobRegistry(job.origin, connection=runtime.redis).requeue(job)
    except InvalidJobOperation:
        return "not failed (already replayed?): nothing to do"
    log.info("dead letter job %s replayed", job_id)
    return "queued again"


def _aware(value: datetime | None) -> datetime:
    if value is None:
        return datetime.min.replace(tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
