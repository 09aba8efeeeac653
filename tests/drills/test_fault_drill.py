"""The fault drill: Relais' real processes under a few thousand Shopify deliveries while everything
they depend on fails in turn, then nothing lost, nothing sent twice, nothing stuck, within a bound.

Started as the Procfile starts them (``release`` first, then ``web`` on a free loopback port and
``worker``), on a fresh SQLite file (PostgreSQL when TEST_DATABASE_URL is set), with a
redis-server of the drill's own (it is flushed, stopped and restarted), the ShipBob fake as the
provider (shipping what it receives and sending ShipBob's signed webhooks) and the fake Shopify
receiving the tracking. Faults, in order: the provider answers 500 for a stretch; the worker's
process group is SIGKILLed mid-job and restarted; Redis is flushed; the provider answers 429;
Redis is stopped for a few seconds; the provider's answers come after the client's timeout; the
worker is killed again; the database refuses for a few seconds.

Not part of ``./dev test``: run it with ``./dev test -m drill tests/drills`` (``.ci/run`` does).
Knobs: DRILL_ORDERS (450) and DRILL_REPEATS (0.6, the share of deliveries sent again: about 2,100
deliveries in all; on 2 cores the worker processes ~17 distinct events a second, so 600 orders put
convergence right at the bound, measured), DRILL_FAULTS=0 (the same traffic without a
fault: what the machine alone allows), DRILL_SEED, DRILL_WORKERS (RELAIS_WORKER_PROCESSES, 4).
The tally is printed whatever the outcome, with each open problem's examples, their orders'
timelines and what Redis holds for their jobs; the processes' logs stay in the test's tmp_path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
import requests
from cryptography.fernet import Fernet
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import create_engine, text

from config import normalise_database_url
from tests.drills import checks
from tests.drills.faults import DatabaseOutage, DrillShipBob
from tests.drills.processes import BIN, RedisServer, Service, free_port, run_once
from tests.drills.traffic import LOCATION, Senders, Shipper, plan_deliveries, plan_orders
from tests.fakes.shipbob import make_secret
from tests.fakes.shopify_admin import FakeShopifyAdmin

pytestmark = pytest.mark.drill

ORDERS = int(os.environ.get("DRILL_ORDERS", "450"))
REPEATS = float(os.environ.get("DRILL_REPEATS", "0.6"))
FAULTS = os.environ.get("DRILL_FAULTS", "1") != "0"  # 0: a baseline run, same traffic, no fault
TRAFFIC_SECONDS = 50.0  # the deliveries are spread over the fault schedule's length
SENDERS = 8
BOUND = 90.0  # seconds after the last fault by which everything must have converged
SHOP = "drill-shop.myshopify.com"
SHOPIFY_TOKEN = "shpat_drill"
APP_SECRET = "drill-shopify-app-secret-0123456789abcdef"
PROVIDER_SECRET = make_secret()
PROVIDER_TIMEOUT = 2.0


def _database(tmp_path: Path) -> str:
    """A fresh, empty database: a new SQLite file, or TEST_DATABASE_URL's schema dropped."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url:
        return f"sqlite:///{tmp_path / 'relais.db'}"
    url = normalise_database_url(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


def _environment(database_url: str, redis_url: str, port: int, shipbob: DrillShipBob, shopify: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "RELAIS_", "SHOPIFY_", "GUNICORN_"))}
    env.update(
        RELAIS_ENV="production",
        SECRET_KEY="drill-secret-key-" + "x" * 32,
        RELAIS_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        SHOPIFY_API_KEY="drill-api-key",
        SHOPIFY_API_SECRET=APP_SECRET,
        SHOPIFY_ADMIN_URL=shopify.url + "/{shop}",
        SHIPBOB_API_URL=shipbob.url,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PORT=str(port),
        RELAIS_BIND=f"127.0.0.1:{port}",  # loopback only (production's default is 0.0.0.0:$PORT)
        GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}",  # overrides config/gunicorn.py's 0.0.0.0
        RELAIS_PUBLIC_URL=f"http://127.0.0.1:{port}",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        RELAIS_WORKER_PROCESSES=os.environ.get("DRILL_WORKERS", "4"),
        RELAIS_PROVIDER_TIMEOUT=str(PROVIDER_TIMEOUT),
        RELAIS_RETRY_BACKOFF="1,2,3,5",
        RELAIS_SWEEP_AFTER_SECONDS="5",
    )
    # Recovery pace: the sweep every 5 s (default 60), a retry 10 s past due counts as lost
    # (default 30); a dead scheduler's lock is taken over after RELAIS_SCHEDULER_TAKEOVER_SECONDS
    # (default 10 s, kept).
    env.update(RELAIS_SWEEP_INTERVAL_SECONDS="5", RELAIS_SCHEDULED_LOST_AFTER_SECONDS="10")
    return env


def _register_shop(env: dict[str, str], shipbob: DrillShipBob) -> int:
    options = {
        "token": shipbob.token,
        "channel_id": str(shipbob.channel_id),
        "webhook_secret": PROVIDER_SECRET,
        "rate_limit": "100000",
        "rate_window": "60",
    }
    argv = [str(BIN / "flask"), "--app", "app", "shop", "add", "shopify", SHOP, "--token", SHOPIFY_TOKEN]
    argv += ["--provider", "shipbob", "--setting", f"location_id={LOCATION}"]
    for key, value in options.items():
        argv += ["--provider-option", f"{key}={value}"]
    out = run_once(argv, env)
    match = re.search(r"shop (\d+):", out)
    assert match, out
    return int(match.group(1))


def _wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url}/healthz never answered 200")


def _jobs_in_hand(redis_url: str) -> int:
    """Jobs RQ has marked started (a worker holds them) right now."""
    connection = redis_lib.Redis.from_url(redis_url, socket_timeout=2)
    try:
        return sum(
            len(StartedJobRegistry(queue.name, connection=connection).get_job_ids())
            for queue in Queue.all(connection=connection)
        )
    except redis_lib.RedisError:
        return 0


class Drill:
    """The fault schedule and its tally."""

    def __init__(self, started: float, redis: RedisServer, worker: Service, shipbob: DrillShipBob) -> None:
        self.started, self.redis, self.worker, self.shipbob = started, redis, worker, shipbob
        self.kills: list[str] = []
        self.flushes = 0
        self.redis_down = 0.0
        self.provider: dict[str, float] = {}
        self.last_fault_end = started
        self.log: list[str] = []

    def at(self, second: float) -> None:
        time.sleep(max(0.0, self.started + second - time.monotonic()))

    def note(self, what: str) -> None:
        now = datetime.now(UTC)
        self.log.append(f"  t={time.monotonic() - self.started:6.1f}s  {now:%H:%M:%S}  {what}")

    def done(self) -> None:
        self.last_fault_end = time.monotonic()

    def provider_outage(self, kind: str, seconds: float) -> None:
        self.shipbob.outage(kind, seconds)
        self.provider[kind] = self.provider.get(kind, 0.0) + seconds
        self.note(f"provider answers {kind} for {seconds:.0f}s")
        self.last_fault_end = time.monotonic() + seconds

    def kill_worker(self) -> None:
        deadline = time.monotonic() + 5
        in_hand = _jobs_in_hand(self.redis.url)
        while not in_hand and time.monotonic() < deadline:
            time.sleep(0.05)
            in_hand = _jobs_in_hand(self.redis.url)
        self.worker.kill_group()
        self.kills.append(f"{in_hand} jobs in hand")
        self.note(f"SIGKILL worker process group ({in_hand} jobs in hand)")
        time.sleep(2)
        self.worker.restart()
        self.note("worker restarted")
        self.done()

    def flush(self) -> None:
        redis_lib.Redis.from_url(self.redis.url).flushall()
        self.flushes += 1
        self.note("FLUSHALL")
        self.done()

    def stop_redis(self, seconds: float) -> None:
        down = time.monotonic()
        self.redis.stop(save=True)
        self.note(f"redis-server stopped for {seconds:.0f}s")
        time.sleep(seconds)
        self.redis.start()
        self.redis_down += time.monotonic() - down
        self.note("redis-server started again (its saved data set loaded)")
        self.done()

    def database_outage(self, outage: DatabaseOutage, seconds: float) -> None:
        self.note(f"database refuses for {seconds:.0f}s ({outage.kind})")
        outage.start(seconds)
        outage.wait()
        self.note("database back")
        self.done()


def test_nothing_is_lost_doubled_or_stuck_when_worker_redis_provider_and_database_fail(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fakes' access logs
    rng = random.Random(int(os.environ.get("DRILL_SEED", "12")))
    database_url = _database(tmp_path)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    shipbob = DrillShipBob(late_by=PROVIDER_TIMEOUT + 1.5, rate_limit=100_000, rate_window=60).start()
    shopify = FakeShopifyAdmin(SHOPIFY_TOKEN, restore_rate=100_000, maximum=100_000).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _environment(database_url, redis.url, port, shipbob, shopify)
    web = Service("web", env, tmp_path / "web.log")
    worker = Service("worker", env, tmp_path / "worker.log")
    outage = DatabaseOutage(database_url)
    engine = create_engine(database_url, pool_pre_ping=True)
    shipper: Shipper | None = None
    lines: list[str] = []
    try:
        run_once([str(BIN / "alembic"), "upgrade", "heads"], env)  # the Procfile's release step
        shop_id = _register_shop(env, shipbob)
        orders = plan_orders(ORDERS, rng)
        deliveries, duplicates = plan_deliveries(orders, shopify, rng, REPEATS)
        web.start()
        worker.start()
        _wait_healthy(url)
        started = time.monotonic()
        load_at_start = os.getloadavg()[0]
        web.watch(started)
        worker.watch(started)
        rate = len(deliveries) / TRAFFIC_SECONDS
        traffic_ends = TRAFFIC_SECONDS
        senders = Senders(url, SHOP, APP_SECRET, SENDERS, rate, deadline=started + traffic_ends + BOUND + 120)
        shipper = Shipper(shipbob, url, PROVIDER_SECRET, orders, shop_id, deadline=started + traffic_ends + 300)
        senders.start(deliveries)
        shipper.start()

        drill = Drill(started, redis, worker, shipbob)
        if FAULTS:
            drill.at(4)
            drill.provider_outage("500", 6)
            drill.at(11)
            drill.kill_worker()
            drill.at(18)
            drill.flush()
            drill.at(22)
            drill.provider_outage("429", 4)
            drill.at(28)
            drill.stop_redis(5)
            drill.at(37)
            drill.provider_outage("timeout", 6)
            drill.at(45)
            drill.kill_worker()
            drill.at(50)
            drill.database_outage(outage, 5)
        else:  # the same traffic and timeline without a fault: what the machine alone allows
            drill.at(55)
            drill.note("no faults injected (DRILL_FAULTS=0: baseline)")
        last_fault = max(drill.last_fault_end, time.monotonic())
        drill.note("last fault over")

        deadline = last_fault + BOUND
        found = checks.look(engine, shop_id, SHOP, orders, shipbob, shopify, shipper, senders.tally.acknowledged_ids())
        next_report = 0.0
        while time.monotonic() < deadline:
            found = checks.look(
                engine, shop_id, SHOP, orders, shipbob, shopify, shipper, senders.tally.acknowledged_ids()
            )
            if found.converged and not senders.alive():
                break
            if time.monotonic() >= next_report:
                drill.note(f"{sum(found.problems.values())} open; {checks.summary(found)}")
                next_report = time.monotonic() + 10
            time.sleep(1)
        converged_after = time.monotonic() - last_fault
        tally = senders.tally
        fulfilments = sum(
            len([f for f in o.fulfillments if f.status == "SUCCESS"]) for o in shopify.state.orders.values()
        )
        outcome = "converged" if found.converged else "NOT converged"
        lines = [
            f"fault drill ({outage.kind}, {len(orders)} orders, {SENDERS} senders at {rate:.0f}/s)",
            *drill.log,
            f"deliveries: {len(deliveries)} sent to Shopify's receiver ({len(deliveries) - duplicates} distinct, "
            f"{duplicates} duplicates), {tally.sends} POSTs in all, {tally.retries} retries after a non-2xx; "
            f"answers: {dict(sorted(tally.answers.items()))}",
            f"orders: {sum(not o.cancelled for o in orders)} paid, {sum(o.cancelled for o in orders)} cancelled; "
            f"at the provider: {len(shipbob.references())} orders, "
            f"{shipbob.counters.get('orders_created', 0)} creates, {shipbob.counters.get('422', 0)} × 422",
            f"parcels: {shipper.parcels()} shipped, {fulfilments} fulfilments on the shop; provider webhooks: "
            f"{dict(sorted(shipper.answers.items()))}, {shipper.retries} retries",
            f"kills: {len(drill.kills)} ({'; '.join(drill.kills)}); flushes: {drill.flushes}; "
            f"redis outage: {drill.redis_down:.1f}s; provider outage: "
            + ", ".join(f"{k} {v:.0f}s" for k, v in drill.provider.items())
            + f" ({sum(drill.provider.values()):.0f}s); database outage: {outage.total_seconds:.0f}s",
            f"unplanned exits (restarted like a dyno): web {web.crashes}, worker {worker.crashes}; "
            f"machine load average at start {load_at_start:.1f}, at end {os.getloadavg()[0]:.1f} (2 cores)",
            f"{outcome} {converged_after:.1f}s after the last fault (bound {BOUND:.0f}s); "
            f"open problems: {dict(found.problems)}",
            *(f"  e.g. {kind}: {', '.join(examples)}" for kind, examples in found.examples.items()),
            *(
                line
                for examples in found.examples.values()
                for example in examples[:1]
                if example.isdigit() and len(example) == 10
                for line in checks.story(engine, shop_id, example)
            ),
            f"logs: {tmp_path}",
        ]
        if not found.converged:
            lines += [
                "what Redis holds for them:",
                *checks.jobs_view(redis.url, checks.job_ids_for(engine, shop_id, found)),
            ]
        with capsys.disabled():
            print("\n" + "\n".join(lines))
        (tmp_path / "tally.txt").write_text("\n".join(lines) + "\n")

        assert not tally.gave_up, f"{len(tally.gave_up)} Shopify deliveries never acknowledged"
        assert not shipper.unsent, f"{len(shipper.unsent)} provider webhooks never acknowledged"
        assert found.converged, f"not converged {BOUND:.0f}s after the last fault: {dict(found.problems)}"
        assert fulfilments == shipper.parcels()
    finally:
        if shipper is not None:
            shipper.stop()
        outage.wait()
        web.stop()
        worker.stop()
        redis.stop(save=False)
        shipbob.stop()
        shopify.stop()
        engine.dispose()
