"""Operational counters kept in Redis, so that every process adds to the same figures.

The web runs as several gunicorn processes and the worker as a pool: a counter held in one
process's memory would be a fraction of the truth, and lost at each restart or recycle. Each
metric family is one Redis hash (``relais:metrics:<family>``) whose fields are its label values
(``HINCRBY``); ``web.metrics`` reads them when Prometheus scrapes. Label values are bounded sets
(a refusal class, a provider name, a job function), never a shop's domain, an id or a secret.

Counting must never break the work it counts: every writer here swallows Redis errors (a lost
increment is better than a lost webhook or a job recorded as failed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis

log = logging.getLogger(__name__)

PREFIX = "relais:metrics:"
WEBHOOK_REJECTIONS = "webhook_rejections"
PROVIDER_429 = "provider_429"
JOB_FAILURES = "job_failures"
JOB_LATENCY = "job_latency"

#: seconds from a job's enqueue to its end (retries included); fixed so every process agrees
LATENCY_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)

#: a webhook refusal's HTTP status → its reason class (the label)
REJECTION_REASONS = {
    401: "signature",
    400: "malformed",
    404: "unknown_shop",
    413: "too_large",
    503: "database_unavailable",
}


def key(family: str) -> str:
    return PREFIX + family


def count(client: redis.Redis | None, family: str, label: str, amount: int = 1) -> None:
    """Add ``amount`` to ``family{label}``; a Redis failure is logged, never raised."""
    if client is None:
        return
    try:
        client.hincrby(key(family), label, amount)
    except redis.RedisError as exc:
        log.warning("metric %s not counted (Redis unavailable: %s)", family, type(exc).__name__)


def rejection_reason(status: int) -> str:
    return REJECTION_REASONS.get(status, "other")


def count_rejection(client: redis.Redis | None, status: int) -> None:
    """A webhook refused with ``status``, counted by its reason class."""
    count(client, WEBHOOK_REJECTIONS, rejection_reason(status))


def count_provider_429(client: redis.Redis | None, provider: str) -> None:
    """A provider answered 429 (rate limited)."""
    count(client, PROVIDER_429, provider)


def observe(
    client: redis.Redis | None, family: str, label: str, value: float, buckets: Sequence[float] = LATENCY_BUCKETS
) -> None:
    """One observation of a histogram: the count of its bucket (``label|<bound>``, or ``label|+Inf``),
    and ``label|sum``, in one round trip. Buckets are stored apart (not cumulative):
    ``histogram`` adds them up when read."""
    if client is None:
        return
    try:
        with client.pipeline(transaction=False) as pipe:
            add_observation(pipe, family, label, value, buckets)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("metric %s not recorded (Redis unavailable: %s)", family, type(exc).__name__)


def add_observation(
    pipe: redis.client.Pipeline, family: str, label: str, value: float, buckets: Sequence[float] = LATENCY_BUCKETS
) -> None:
    """``observe``'s writes, queued on a caller's pipeline (the caller executes it, and handles
    its errors): a job's end records its latency and releases its fair share in one round trip."""
    bound = next((b for b in buckets if value <= b), None)
    pipe.hincrby(key(family), f"{label}|{'+Inf' if bound is None else _bound(bound)}", 1)
    pipe.hincrbyfloat(key(family), f"{label}|sum", max(value, 0.0))


def _bound(value: float) -> str:
    return repr(float(value))


def counters(client: redis.Redis, family: str) -> dict[str, int]:
    """Every label of a counter family and its value (raises ``redis.RedisError``: the scrape
    answers 503 then)."""
    return {name.decode(): int(value) for name, value in client.hgetall(key(family)).items()}


def histogram(
    client: redis.Redis, family: str, buckets: Sequence[float] = LATENCY_BUCKETS
) -> dict[str, tuple[list[tuple[str, float]], float]]:
    """label → (cumulative buckets as Prometheus wants them, ``+Inf`` last; sum)."""
    raw = {name.decode(): float(value) for name, value in client.hgetall(key(family)).items()}
    labels = {name.rsplit("|", 1)[0] for name in raw}
    found: dict[str, tuple[list[tuple[str, float]], float]] = {}
    for label in sorted(labels):
        running = 0.0
        cumulative: list[tuple[str, float]] = []
        for bound in buckets:
            running += raw.get(f"{label}|{_bound(bound)}", 0.0)
            cumulative.append((_bound(bound), running))
        running += raw.get(f"{label}|+Inf", 0.0)
        cumulative.append(("+Inf", running))
        found[label] = (cumulative, raw.get(f"{label}|sum", 0.0))
    return found
