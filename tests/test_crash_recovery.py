"""Crash recovery of the real worker (``python -m jobs.worker``, the Procfile line): retries survive
a SIGKILL of the worker's whole process group and a FLUSHALL of Redis, and a SIGTERM stops it
cleanly (the job in hand finished or requeued, the scheduler locks released, exit status 0).

The provider is a local HTTP server speaking the sandbox 3PL's API that the test makes fail
(503) or slow; the order arrives as a stored, signed-off Shopify delivery as the webhook endpoint
leaves it. Before these fixes a retry waited for RQ's scheduler locks of the dead process (61 s)
and then for a worker's maintenance pass (10 minutes).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from jobs.maintenance import enqueue_event
from jobs.runtime import Runtime
from sandbox.demo import CUSTOMERS, demo_order
from store.db import transaction
from store.models import Order, WebhookEvent
from store.shops import upsert_shop

ROOT = Path(__file__).resolve().parent.parent


class Provider:
    """The sandbox API's order calls; ``status`` and ``latency`` are set by the test."""

    def __init__(self) -> None:
        self.status = 201
        self.latency = 0.0
        self.calls: list[tuple[float, int]] = []  # (time, status answered) of each create
        self.created: dict[str, int] = {}
        ids = itertools.count(1)
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                time.sleep(provider.latency)
                status = provider.status
                provider.calls.append((time.monotonic(), status))
                if status != 201:
                    return self._answer(status, {"error": "unavailable"})
                if body["reference"] in provider.created:
                    return self._answer(409, {"order_id": provider.created[body["reference"]]})
                provider.created[body["reference"]] = next(ids)
                return self._answer(201, {"id": provider.created[body["reference"]], "status": "processing"})

            def do_GET(self) -> None:
                self._answer(200, {"orders": []})

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a worker interrupted mid-call
                    self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class WorkerProcess:
    """``python -m jobs.worker`` in its own process group, as a dyno runs it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobs.worker"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def signal_group(self, sig: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal_group(signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_for(condition: Callable[[], bool], timeout: float, what: str, worker: WorkerProcess | None = None) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout`` (with the worker's log)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.1)
    tail = worker.log()[-4000:] if worker else ""
    raise AssertionError(f"{what}: not within {timeout} s\n{tail}")


@pytest.fixture
def provider() -> Iterator[Provider]:
    stub = Provider()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


@pytest.fixture
def worker_env(runtime: Runtime, settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RELAIS_", "SHOPIFY_"))},
        "RELAIS_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "SECRET_KEY": settings.secret_key,
        "SHOPIFY_API_SECRET": settings.shopify_api_secret,
        "RELAIS_WORKER_PROCESSES": "2",
        "RELAIS_RETRY_BACKOFF": "4",
        "RELAIS_PUSH_MAX_RETRIES": "5",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def workers(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(**extra: str) -> WorkerProcess:
        worker = WorkerProcess({**worker_env, **extra}, tmp_path / "worker.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def paid_order(runtime: Runtime, provider: Provider) -> int:
    """A shop on the stub provider and one paid order's delivery stored and enqueued; its event id."""
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            "crash.myshopify.com",
            {"access_token": "shpat_crash"},
            "sandbox",
            {"token": "crash", "url": provider.url},
        )
        body = json.dumps(demo_order(55_000_001, CUSTOMERS[0])).encode()
        event = WebhookEvent(
            source="shopify", delivery_key="crash:1", shop_id=shop.id, topic="orders/paid", headers={}, body=body
        )
        session.add(event)
        session.flush()
        event_id = event.id
    enqueue_event(runtime, event_id)
    return event_id


def order_state(runtime: Runtime) -> str | None:
    with runtime.sessions() as session:
        return session.scalar(select(Order.state))


def push_job_id(runtime: Runtime) -> str:
    with runtime.sessions() as session:
        order = session.scalars(select(Order)).one()
        return f"push-{order.id}-{order.generation}"


def retry_scheduled(runtime: Runtime) -> bool:
    return len(ScheduledJobRegistry("orders", connection=runtime.redis)) > 0


def test_a_retry_runs_within_seconds_after_the_worker_group_is_sigkilled_and_restarted(
    runtime, provider, workers
) -> None:  # type: ignore[no-untyped-def]
    provider.status = 503
    paid_order(runtime, provider)
    worker = workers()
    wait_for(lambda: retry_scheduled(runtime) and provider.calls, 60, "a push retry scheduled", worker)
    # The pool's parent takes the locks on its first tick, which a fast first job can outrun.
    wait_for(lambda: runtime.redis.exists("rq:scheduler-lock:orders") == 1, 30, "the scheduler lock taken", worker)
    # The whole dyno dies, scheduler included, while the retry waits; its scheduler locks stay.
    worker.kill()
    assert runtime.redis.exists("rq:scheduler-lock:orders")
    provider.status = 201
    restarted = workers()
    recovered = wait_for(lambda: order_state(runtime) == "pushed", 30, "the order pushed after the restart", restarted)
    print(f"\nSIGKILL → restart → retry ran and the order was pushed in {recovered:.1f} s (worker start included)")
    # The 4 s retry interval plus the worker's start; RQ alone needed the lock's 61 s, then up to 10 minutes.
    assert recovered < 15
    assert "taken over" in restarted.log()
    assert len(provider.created) == 1


def test_retries_lost_in_a_redis_flush_are_restored_and_run_within_seconds(runtime, provider, workers) -> None:  # type: ignore[no-untyped-def]
    provider.status = 503
    paid_order(runtime, provider)
    worker = workers(RELAIS_RETRY_BACKOFF="30")  # default sweep age and interval (60 s)
    wait_for(lambda: retry_scheduled(runtime) and provider.calls, 60, "a push retry scheduled", worker)
    # The pool's parent notes Redis' marker on its first tick (then takes the locks): a flush
    # before that tick would look like a fresh Redis, not a lost one.
    wait_for(lambda: runtime.redis.exists("rq:scheduler-lock:orders") == 1, 30, "the scheduler lock taken", worker)
    provider.status = 201
    runtime.redis.flushall()
    recovered = wait_for(lambda: order_state(runtime) == "pushed", 30, "the order pushed after the flush", worker)
    print(f"\nFLUSHALL → the lost retry re-created from the database and the order pushed in {recovered:.1f} s")
    # The retry was due in 30 s and its job is gone: only the flush-triggered sweep can run it sooner.
    assert recovered < 15
    assert "Redis lost its data" in worker.log()
    assert len(provider.created) == 1


def test_the_sweep_runs_a_retry_no_scheduler_moved_long_after_its_due_time(runtime, provider) -> None:  # type: ignore[no-untyped-def]
    from jobs.maintenance import sweep
    from tests.conftest import drain

    runtime.settings = runtime.settings.with_(retry_backoff=(30,))
    provider.status = 503
    paid_order(runtime, provider)
    drain(runtime, timeout=5, horizon=0)  # process the event; the push fails once and waits for its retry
    job_id = push_job_id(runtime)
    registry = ScheduledJobRegistry("orders", connection=runtime.redis)
    assert job_id in registry
    # Its due time is a minute past and no scheduler holds the lock: a check by id called it live.
    runtime.redis.zadd(registry.key, {job_id: int(time.time()) - 60})
    retries_left = Job.fetch(job_id, connection=runtime.redis).retries_left
    provider.status = 201
    assert sweep()["rescued"] == 1
    job = Job.fetch(job_id, connection=runtime.redis)
    assert job.get_status() == JobStatus.QUEUED and job.retries_left == retries_left  # its retry count kept
    drain(runtime, timeout=5, horizon=0)
    assert order_state(runtime) == "pushed"


def test_sigterm_mid_job_lets_the_job_finish_releases_the_locks_and_exits_zero(runtime, provider, workers) -> None:  # type: ignore[no-untyped-def]
    provider.latency = 3.0
    paid_order(runtime, provider)
    worker = workers()
    wait_for(lambda: runtime.redis.exists("rq:scheduler-lock:orders") == 1, 30, "the scheduler lock taken", worker)
    wait_for(lambda: order_state(runtime) == "pushing", 30, "the push started", worker)
    time.sleep(0.5)  # the create call is in flight at the provider
    stopped_at = time.monotonic()
    worker.signal_group(signal.SIGTERM)  # Heroku signals every process of the dyno
    assert worker.proc is not None
    code = worker.proc.wait(30)
    took = time.monotonic() - stopped_at
    print(f"\nSIGTERM mid-job → exit {code} in {took:.1f} s")
    assert code == 0 and took < 30
    assert order_state(runtime) == "pushed"  # the job in hand finished
    assert runtime.redis.keys("rq:scheduler-lock:*") == []


def test_a_job_outliving_the_shutdown_grace_goes_back_to_its_queue(runtime, provider, workers) -> None:  # type: ignore[no-untyped-def]
    provider.latency = 8.0
    paid_order(runtime, provider)
    worker = workers(RELAIS_SHUTDOWN_GRACE_SECONDS="1")
    wait_for(lambda: order_state(runtime) == "pushing", 30, "the push started", worker)
    time.sleep(0.5)
    stopped_at = time.monotonic()
    worker.signal_group(signal.SIGTERM)
    assert worker.proc is not None
    code = worker.proc.wait(30)
    took = time.monotonic() - stopped_at
    assert code == 0 and took < 8, worker.log()[-3000:]
    job = Job.fetch(push_job_id(runtime), connection=runtime.redis)
    assert job.get_status() == JobStatus.QUEUED
    assert job.id in runtime.queue("orders").get_job_ids()
    assert runtime.redis.keys("rq:scheduler-lock:*") == []
    provider.latency = 0.0
    workers()
    wait_for(lambda: order_state(runtime) == "pushed", 30, "the requeued push done by the next worker")


def test_a_job_started_by_a_pool_worker_that_died_is_not_live_and_runs_again(runtime) -> None:  # type: ignore[no-untyped-def]
    from jobs.queues import enqueue_once, job_is_live
    from jobs.scheduling import mark_workers_alive

    assert enqueue_once(runtime, "maintenance", "jobs.maintenance.sweep", job_id="started-elsewhere")
    job = Job.fetch("started-elsewhere", connection=runtime.redis)
    job.worker_name = "pool-worker-1"
    job.set_status(JobStatus.STARTED)
    job.save()
    mark_workers_alive(runtime.redis, ["pool-worker-1"])
    assert job_is_live(runtime, "started-elsewhere")  # its worker is alive: running
    runtime.redis.delete("relais:worker-alive:pool-worker-1")  # SIGKILLed: no parent refreshes it
    assert not job_is_live(runtime, "started-elsewhere")
    assert enqueue_once(runtime, "maintenance", "jobs.maintenance.sweep", job_id="started-elsewhere")
    assert Job.fetch("started-elsewhere", connection=runtime.redis).get_status() == JobStatus.QUEUED
    # A worker the pool never knew (a test's or an operator's `rq worker`) is never declared dead.
    job = Job.fetch("started-elsewhere", connection=runtime.redis)
    job.worker_name = "outside-worker"
    job.set_status(JobStatus.STARTED)
    job.save()
    assert job_is_live(runtime, "started-elsewhere")


def test_a_scheduler_lock_of_another_host_is_taken_over_only_once_its_heartbeat_is_stale(runtime) -> None:  # type: ignore[no-untyped-def]
    from rq.utils import now, utcformat

    from jobs.scheduling import SchedulerKeeper

    runtime.redis.set("rq:scheduler-lock:orders", "other-dyno-scheduler", ex=61)
    beat = {"name": "other-dyno-scheduler", "hostname": "other-dyno", "pid": "4", "queues": "orders"}
    runtime.redis.hset("rq:scheduler:other-dyno-scheduler", mapping={**beat, "last_heartbeat": utcformat(now())})
    keeper = SchedulerKeeper(["orders"], runtime.redis, takeover_after=1.5)
    keeper.tick()
    assert keeper.held == set()  # alive elsewhere: left alone
    time.sleep(2)
    keeper.tick()
    assert keeper.held == {"orders"}
    assert runtime.redis.get("rq:scheduler-lock:orders").decode() == keeper.name
    keeper.stop()
    assert not runtime.redis.exists("rq:scheduler-lock:orders")
