"""SQL statements and Redis commands per order on the webhook → provider path, counted exactly.

``bench/pipeline.py`` measures throughput; this counts what each order costs the worker, so a
change meant to save work shows the work saved, whatever the machine's load. In one process:

- a redis-server of its own (port 18291), the ShipBob fake answering at once, the database of
  ``BENCH_DATABASE_URL`` (its schema dropped and migrated; default: a SQLite file);
- ``--orders`` signed ``orders/paid`` deliveries POSTed to the app's ``/webhooks/shopify`` (Flask's
  test client: the web's share, counted apart);
- then the worker's share: a threaded worker (``jobs.threaded``, ``--threads``) in burst mode runs
  every event job and every push job, and the count is taken around it.

Statements: SQLAlchemy's ``before_cursor_execute`` on the runtime's engine (BEGIN/COMMIT are not
statements there; they are counted apart, as commits and rollbacks). Redis: round trips (one per
command, one per pipeline or script call: ``Connection.send_packed_command``) and the commands the
server ran (``MONITOR``, commands run inside Lua scripts included), by command name.

    .venv/bin/python bench/pipeline_counts.py [--orders 200] [--threads 16] [--top 15]
    COUNTS_TRACE=1 … --orders 1 --threads 1      # every statement and command, in order

Figures (PostgreSQL, 300 orders, worker's share per order), before and after the cuts of
branch pipe3: SQL statements 27 → 21, connection checkouts (each a ping) 4 → 3, Redis round
trips 32.7 → 26.7, commands the server ran 114 → 106 (+9 → +12 inside Lua scripts). What is
left is mostly RQ's own bookkeeping (~21 round trips per order: dequeue, job fetch, execution
registries, heartbeats, success pipeline) and one statement per row read or written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from redis.connection import Connection  # noqa: E402
from sqlalchemy import event  # noqa: E402

from app import create_app  # noqa: E402
from bench.pipeline import APP_SECRET, environment, fresh_database, register_shops, start_redis  # noqa: E402
from cli.serve import upgrade_database  # noqa: E402
from config import load_settings  # noqa: E402
from jobs.runtime import build_runtime, set_runtime  # noqa: E402
from jobs.threaded import ThreadedSimpleWorker  # noqa: E402
from store.models import Order  # noqa: E402
from tests.fakes.shipbob import start_fake  # noqa: E402
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order  # noqa: E402

REDIS_PORT = 18291
TRACE = bool(os.environ.get("COUNTS_TRACE"))  # print every statement and command


class Counts:
    """What one phase cost: statements by kind, Redis round trips, server-side commands."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.transactions: Counter[str] = Counter()
        self.round_trips = 0
        self.commands: Counter[str] = Counter()
        self.lua_commands: Counter[str] = Counter()
        self._lock = threading.Lock()

    def statement(self, sql: str) -> None:
        words = sql.split(None, 3)
        kind = words[0].upper() if words else "?"
        table = ""
        if kind == "SELECT":
            found = re.search(r"\sFROM\s+(\S+)", sql)
            table = found.group(1) if found else ""
            if re.search(r"FOR UPDATE\s*$", sql):
                table += " FOR UPDATE"
        elif kind in ("INSERT", "DELETE"):
            table = words[2] if len(words) > 2 else ""
        elif kind == "UPDATE":
            table = words[1] if len(words) > 1 else ""
        with self._lock:
            self.statements[f"{kind} {table}".strip()] += 1


def count_statements(engine: Any, counts: list[Counts]) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if counts:
            counts[-1].statement(statement)
            if TRACE:
                print("SQL", " ".join(statement.split())[:160])

    @event.listens_for(engine, "commit")
    def _commit(conn):  # type: ignore[no-untyped-def]
        if counts:
            with counts[-1]._lock:
                counts[-1].transactions["commit"] += 1

    @event.listens_for(engine, "rollback")
    def _rollback(conn):  # type: ignore[no-untyped-def]
        if counts:
            with counts[-1]._lock:
                counts[-1].transactions["rollback"] += 1

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        if counts:
            with counts[-1]._lock:
                counts[-1].transactions["begin"] += 1

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, proxy):  # type: ignore[no-untyped-def]
        if counts:
            with counts[-1]._lock:
                counts[-1].transactions["checkout"] += 1

    ping = engine.dialect.do_ping

    def do_ping(dbapi_connection):  # type: ignore[no-untyped-def]
        if counts:
            with counts[-1]._lock:
                counts[-1].transactions["ping"] += 1
        return ping(dbapi_connection)

    engine.dialect.do_ping = do_ping


def count_round_trips(counts: list[Counts]) -> None:
    original = Connection.send_packed_command

    def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        if counts and getattr(self, "port", None) == REDIS_PORT:
            with counts[-1]._lock:
                counts[-1].round_trips += 1
        return original(self, command, check_health)

    Connection.send_packed_command = send_packed_command  # type: ignore[method-assign]


def monitor(counts: list[Counts], stop: threading.Event) -> threading.Thread:
    """Count every command the server runs, by name (``lua`` ones apart), into the current phase."""

    def run() -> None:
        client = redis.Redis(port=REDIS_PORT)
        with contextlib.suppress(redis.ConnectionError), client.monitor() as m:
            for item in m.listen():
                if stop.is_set():
                    return
                command = str(item.get("command", "")).split(" ", 1)[0].upper()
                if command in ("", "MONITOR") or not counts:
                    continue
                if TRACE and len(counts) == 2:
                    print("REDIS", item.get("client_type", ""), str(item.get("command", ""))[:140])
                target = counts[-1].lua_commands if item.get("client_type") == "lua" else counts[-1].commands
                with counts[-1]._lock:
                    target[command] += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def report(name: str, counts: Counts, orders: int, top: int) -> None:
    statements = sum(counts.statements.values())
    commands = sum(counts.commands.values())
    lua = sum(counts.lua_commands.values())
    print(f"== {name}: per order ({orders} orders)")
    per = {kind: n / orders for kind, n in counts.transactions.items()}
    database = ", ".join(
        f"{kind}s {per.get(kind, 0):.2f}" for kind in ("checkout", "ping", "begin", "commit", "rollback")
    )
    print(f"   SQL statements {statements / orders:.2f}; {database}")
    print(
        f"   Redis round trips {counts.round_trips / orders:.2f}; "
        f"commands {commands / orders:.2f} (+{lua / orders:.2f} in Lua)"
    )
    for kind, n in counts.statements.most_common(top):
        print(f"     sql   {n / orders:6.2f}  {kind}")
    for command, n in counts.commands.most_common(top):
        print(f"     redis {n / orders:6.2f}  {command}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--shops", type=int, default=10)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    args.processes = 1

    folder = Path(tempfile.mkdtemp(prefix="relais-counts-"))
    redis_server = start_redis(folder, REDIS_PORT)
    shipbob = start_fake(rate_limit=100_000, rate_window=60)
    stop = threading.Event()
    try:
        database_url = fresh_database(folder)
        env = environment(database_url, args, shipbob.url)
        env["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"
        env["RELAIS_ENV"] = "development"  # the test client speaks plain HTTP
        upgrade_database(database_url)
        shops = register_shops(env, shipbob, args.shops)
        domains = sorted(shops)
        runtime = build_runtime(load_settings(env))
        set_runtime(runtime)
        phases: list[Counts] = []
        count_statements(runtime.engine, phases)
        count_round_trips(phases)
        monitor(phases, stop)
        time.sleep(0.3)

        web = create_app(runtime=runtime).test_client()
        phases.append(Counts())
        for n in range(args.orders):
            order_id = 9_100_000_000 + n
            body = body_of(paid_order(order_id, name=f"#B{order_id}"))
            domain = domains[n % len(domains)]
            headers = headers_for(domain, "orders/paid", body, APP_SECRET, webhook_id=str(uuid.uuid4()))
            assert web.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
        time.sleep(0.5)  # MONITOR's last lines

        phases.append(Counts())
        queues = [runtime.queue(name) for name in runtime.queue_names]
        started, cpu = time.monotonic(), time.process_time()
        ThreadedSimpleWorker(queues, connection=runtime.redis, threads=args.threads).work(
            burst=True, logging_level="WARNING"
        )
        cpu, wall = time.process_time() - cpu, time.monotonic() - started
        time.sleep(0.5)
        web_counts, worker_counts = phases
        phases.append(Counts())
        with runtime.sessions() as session:
            pushed = session.query(Order).filter(Order.state == "pushed").count()
        print(f"database {database_url.split(':', 1)[0]}; {args.threads} threads; orders pushed {pushed}/{args.orders}")
        print(f"worker: {cpu / args.orders * 1000:.1f} ms CPU per order (this process), {wall:.1f} s wall")
        report("web (deliveries)", web_counts, args.orders, args.top)
        report("worker (event job + push job)", worker_counts, args.orders, args.top)
    finally:
        stop.set()
        shipbob.stop()
        redis_server.terminate()
        redis_server.wait(10)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
