"""``GET /metrics``: Prometheus figures for the operator, behind a bearer token.

Every figure is read when Prometheus scrapes, from where the truth is shared by every process:
RQ's queues and registries and the counters ``store.metrics`` keeps in Redis (an in-process
counter would be one gunicorn process's or one pool worker's share), and the reconciliations'
drift reports in the database. One ``CollectorRegistry`` per app holds the one collector.

Access: ``RELAIS_METRICS_TOKEN`` as ``Authorization: Bearer …`` (compared in constant time).
Unset, the route answers 404 like any unknown path, in every environment: no token, no metrics.
A missing or wrong token gets 401 and nothing else. Redis unreachable: 503 with a plain reason
(the queue figures live there), never a 500. Labels are bounded sets (queue, job function,
refusal reason, provider, drift kind): never a shop's domain, an id or a secret.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.utils import now
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from config import log_context
from jobs.fairness import BACKLOG_PREFIX
from jobs.runtime import Runtime
from store import metrics as counters
from web import runtime

log = logging.getLogger(__name__)
blueprint = Blueprint("metrics", __name__)


class RelaisCollector(Collector):
    """Reads every figure at scrape time (raises ``redis.RedisError`` when Redis is down)."""

    def __init__(self, rt: Runtime) -> None:
        self.runtime = rt

    def collect(self) -> Iterator[Metric]:
        yield from self._queues()
        yield from self._jobs()
        yield from self._edges()
        yield from self._fair_share()
        yield from self._drift()

    def _queues(self) -> Iterator[Metric]:
        client = self.runtime.redis
        depth = GaugeMetricFamily("relais_queue_jobs", "Jobs waiting in the queue.", labels=["queue"])
        age = GaugeMetricFamily(
            "relais_queue_oldest_job_age_seconds",
            "Age of the job at the head of the queue (0: empty).",
            labels=["queue"],
        )
        scheduled = GaugeMetricFamily(
            "relais_scheduled_jobs", "Jobs waiting for a retry (RQ scheduled registry).", labels=["queue"]
        )
        started = GaugeMetricFamily("relais_started_jobs", "Jobs running now.", labels=["queue"])
        failed = GaugeMetricFamily(
            "relais_failed_jobs", "Jobs that failed for good (RQ failed registry: the dead letters).", labels=["queue"]
        )
        moment = now()
        for name in self.runtime.queue_names:
            queue = self.runtime.queue(name)
            depth.add_metric([name], queue.count)
            age.add_metric([name], _oldest_age(client, queue.get_job_ids(0, 1), moment))
            scheduled.add_metric([name], ScheduledJobRegistry(name, connection=client).get_job_count(cleanup=False))
            started.add_metric([name], StartedJobRegistry(name, connection=client).get_job_count(cleanup=False))
            failed.add_metric([name], FailedJobRegistry(name, connection=client).get_job_count(cleanup=False))
        yield from (depth, age, scheduled, started, failed)

    def _jobs(self) -> Iterator[Metric]:
        client = self.runtime.redis
        latency = HistogramMetricFamily(
            "relais_job_duration_seconds",
            "From a job's enqueue to its end, retries included, by job function.",
            labels=["function"],
        )
        for function, (buckets, total) in counters.histogram(client, counters.JOB_LATENCY).items():
            latency.add_metric([function], buckets, total)
        failures = CounterMetricFamily(
            "relais_job_failures", "Jobs that failed with no retry left, by job function.", labels=["function"]
        )
        for function, value in sorted(counters.counters(client, counters.JOB_FAILURES).items()):
            failures.add_metric([function], value)
        yield from (latency, failures)

    def _edges(self) -> Iterator[Metric]:
        client = self.runtime.redis
        refused = CounterMetricFamily(
            "relais_webhook_rejections",
            "Webhooks refused, by reason (signature 401, malformed 400, unknown_shop 404, too_large 413, "
            "database_unavailable 503).",
            labels=["reason"],
        )
        for reason, value in sorted(counters.counters(client, counters.WEBHOOK_REJECTIONS).items()):
            refused.add_metric([reason], value)
        limited = CounterMetricFamily(
            "relais_provider_rate_limited", "429 answers from fulfilment providers, by provider.", labels=["provider"]
        )
        for provider, value in sorted(counters.counters(client, counters.PROVIDER_429).items()):
            limited.add_metric([provider], value)
        yield from (refused, limited)

    def _fair_share(self) -> Iterator[Metric]:
        client = self.runtime.redis
        share = self.runtime.settings.fair_share
        waiting = over = 0
        for key in client.scan_iter(match=f"{BACKLOG_PREFIX}*", count=500):
            size = int(client.zcard(key))
            waiting += size
            over += bool(share) and size > share
        yield GaugeMetricFamily("relais_shop_backlog_jobs", "Jobs of shops waiting or retrying (all shops).", waiting)
        yield GaugeMetricFamily(
            "relais_shops_over_fair_share", "Shops whose further jobs go to the -bulk queues now.", over
        )

    def _drift(self) -> Iterator[Metric]:
        """The latest reconciliation drift report of every shop (``shop_sync.drift_report``), added up."""
        from store.sync_models import ShopSync

        drift = GaugeMetricFamily(
            "relais_reconcile_drift",
            "What the latest reconciliation of every shop found, added up: missing (by kind), repaired, still wrong.",
            labels=["kind"],
        )
        shops = GaugeMetricFamily(
            "relais_reconcile_shops_still_wrong", "Shops whose latest reconciliation left something wrong."
        )
        oldest = GaugeMetricFamily(
            "relais_reconcile_oldest_report_age_seconds", "Age of the oldest shop's latest drift report."
        )
        try:
            with self.runtime.sessions() as session:
                reports = session.scalars(select(ShopSync.drift_report).where(ShopSync.drift_report.is_not(None))).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: drift reports not read (database: %s)", type(exc).__name__)
            return
        totals: dict[str, int] = {}
        wrong = 0
        ages: list[float] = []
        moment = datetime.now(UTC)
        for report in reports:
            for group in report.get("missing") or []:
                totals[str(group.get("kind"))] = totals.get(str(group.get("kind")), 0) + int(group.get("count") or 0)
            for section in ("repaired", "still_wrong"):
                totals[section] = totals.get(section, 0) + int((report.get(section) or {}).get("count") or 0)
            wrong += bool((report.get("still_wrong") or {}).get("count"))
            ages.append(_age(report.get("at"), moment))
        for kind in sorted(totals):
            drift.add_metric([kind], totals[kind])
        shops.add_metric([], wrong)
        oldest.add_metric([], max(ages, default=0.0))
        yield from (drift, shops, oldest)


def _oldest_age(client: redis.Redis, head: list[str], moment: datetime) -> float:
    if not head:
        return 0.0
    job = Job.fetch_many(head, connection=client)[0]
    if job is None or job.enqueued_at is None:
        return 0.0
    return max((moment - job.enqueued_at).total_seconds(), 0.0)


def _age(stamp: Any, moment: datetime) -> float:
    try:
        at = datetime.fromisoformat(str(stamp))
    except ValueError:
        return 0.0
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    return max((moment - at).total_seconds(), 0.0)


def _authorized(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@blueprint.get("/metrics")
def scrape():  # type: ignore[no-untyped-def]
    token = runtime().settings.metrics_token
    if not token:
        abort(404)  # no token configured: metrics are off, and the path looks like any unknown one
    if not _authorized(token):
        return Response(
            "a bearer token is required\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain"
        )
    try:
        body = generate_latest(current_app.extensions["relais_metrics"])
    except redis.RedisError as exc:
        log.warning("metrics unavailable: Redis unreachable (%s)", type(exc).__name__)
        return Response("metrics unavailable: Redis (queues and counters) is unreachable\n", 503, mimetype="text/plain")
    return Response(body, 200, {"Cache-Control": "no-store"}, content_type=CONTENT_TYPE_LATEST)


def _fresh_log_context() -> None:
    """Each request starts with no ids: a gunicorn thread serves many requests in turn."""
    log_context.clear()


def init_app(app: Flask, rt: Runtime) -> None:
    """The ``/metrics`` route, its registry (one per app), and a clean log context per request."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RelaisCollector(rt))
    app.extensions["relais_metrics"] = registry
    app.before_request(_fresh_log_context)
    app.register_blueprint(blueprint)
