"""SIGTERM with several jobs in flight in one worker process (the Procfile's worker, threaded):
each job in flight finishes within the grace period, or goes back to the front of its queue
when the grace period is over, and the process exits 0; what went back runs once afterwards.
"""

from __future__ import annotations

import json
import signal
import time

from rq.job import Job, JobStatus
from sqlalchemy import select

from jobs.maintenance import enqueue_event
from jobs.runtime import Runtime
from sandbox.demo import CUSTOMERS, demo_order
from store.db import transaction
from store.models import Order, WebhookEvent
from store.shops import upsert_shop
from tests.test_crash_recovery import Provider, provider, wait_for, worker_env, workers  # noqa: F401

IN_FLIGHT = 4


def paid_orders(runtime: Runtime, provider: Provider, count: int) -> None:  # noqa: F811
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            "threads-stop.myshopify.com",
            {"access_token": "shpat_stop"},
            "sandbox",
            {"token": "stop", "url": provider.url},
        )
        events = []
        for n in range(count):
            body = json.dumps(demo_order(56_000_001 + n, CUSTOMERS[n % len(CUSTOMERS)])).encode()
            event = WebhookEvent(
                source="shopify", delivery_key=f"stop:{n}", shop_id=shop.id, topic="orders/paid", headers={}, body=body
            )
            session.add(event)
            events.append(event)
        session.flush()
        ids = [event.id for event in events]
    for event_id in ids:
        enqueue_event(runtime, event_id)


def order_states(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Order.state)))


def push_job_ids(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return [f"push-{o.id}-{o.generation}" for o in session.scalars(select(Order))]


def test_sigterm_with_several_jobs_in_flight_lets_each_finish_and_exits_zero(runtime, provider, workers) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    provider.latency = 3.0
    paid_orders(runtime, provider, IN_FLIGHT)
    worker = workers(RELAIS_WORKER_PROCESSES="1", RELAIS_WORKER_THREADS=str(IN_FLIGHT))
    wait_for(lambda: order_states(runtime) == ["pushing"] * IN_FLIGHT, 30, "every push in flight", worker)
    time.sleep(0.5)  # the create calls are at the provider
    stopped_at = time.monotonic()
    worker.signal_group(signal.SIGTERM)
    assert worker.proc is not None
    code = worker.proc.wait(30)
    took = time.monotonic() - stopped_at
    assert code == 0 and took < 20, worker.log()[-3000:]
    assert order_states(runtime) == ["pushed"] * IN_FLIGHT  # every job in hand finished
    assert len(provider.created) == IN_FLIGHT
    assert runtime.redis.keys("rq:scheduler-lock:*") == []


def test_jobs_in_flight_past_the_grace_go_back_to_their_queue_and_then_run_once(runtime, provider, workers) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    provider.latency = 8.0
    paid_orders(runtime, provider, IN_FLIGHT)
    extra = {"RELAIS_WORKER_PROCESSES": "1", "RELAIS_WORKER_THREADS": str(IN_FLIGHT)}
    worker = workers(RELAIS_SHUTDOWN_GRACE_SECONDS="1", **extra)
    wait_for(lambda: order_states(runtime) == ["pushing"] * IN_FLIGHT, 30, "every push in flight", worker)
    time.sleep(0.5)
    stopped_at = time.monotonic()
    worker.signal_group(signal.SIGTERM)
    assert worker.proc is not None
    code = worker.proc.wait(30)
    took = time.monotonic() - stopped_at
    assert code == 0 and took < 8, worker.log()[-3000:]
    queued = runtime.queue("orders").get_job_ids()
    for job_id in push_job_ids(runtime):
        assert Job.fetch(job_id, connection=runtime.redis).get_status() == JobStatus.QUEUED
        assert job_id in queued
    assert runtime.redis.keys("rq:scheduler-lock:*") == []

    provider.latency = 0.0
    workers(**extra)
    wait_for(lambda: order_states(runtime) == ["pushed"] * IN_FLIGHT, 30, "the requeued pushes done by the next worker")
    assert len(provider.created) == IN_FLIGHT  # one order per reference at the provider
