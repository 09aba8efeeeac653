"""How fast the worker pool pushes orders to a provider that answers in 100 ms, and in how much memory.

The worker alone, from a full queue (``bench/pipeline.py`` measures the whole path, webhook to
provider, with latencies). Goal (issue 14): at least 100 orders/s inside 512 MB. The bench stores N paid
Shopify deliveries in the inbox (as the webhook endpoint would), enqueues their jobs, starts the
real worker process (``python -m jobs.worker``, the Procfile line) and waits until every order is
``pushed`` at a stub provider speaking the sandbox API with a fixed 100 ms latency. It prints
orders/s and its ratio to 100/s, and the worker tree's peak memory (PSS: shared pages counted
once) and its ratio to 512 MB.

    .venv/bin/python bench/worker_throughput.py [--orders 1000] [--workers 2] [--threads 16] [--latency 0.1]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test  (default: a SQLite file)
    BENCH_REDIS_URL=redis://127.0.0.1:6379/12  (default: a redis-server of its own on port 18204)
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from cli.serve import upgrade_database  # noqa: E402
from config import load_settings, normalise_database_url  # noqa: E402
from jobs.maintenance import enqueue_event  # noqa: E402
from jobs.runtime import build_runtime, set_runtime  # noqa: E402
from sandbox.demo import CUSTOMERS, demo_order  # noqa: E402
from store.db import transaction  # noqa: E402
from store.models import Order, OrderTransition, WebhookEvent  # noqa: E402
from store.shops import upsert_shop  # noqa: E402


class StubProvider(BaseHTTPRequestHandler):
    """The sandbox API's create-order call, answering after a fixed latency."""

    latency = 0.1
    counter = itertools.count(1)
    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        time.sleep(self.latency)
        StubProvider.received += 1
        answer = json.dumps({"id": next(self.counter), "reference": body["reference"], "status": "processing"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def pss_mb(root_pid: int) -> float:
    """Proportional set size of a process and all its descendants, in MB."""
    pids = [root_pid]
    total = 0
    for pid in pids:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            pids.extend(int(c) for c in children)
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16, help="jobs in flight per worker process")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--worker-class", default="simple", choices=("fork", "simple"))
    args = parser.parse_args()

    StubProvider.latency = args.latency
    stub = ThreadingHTTPServer(("127.0.0.1", 18205), StubProvider)
    threading.Thread(target=stub.serve_forever, daemon=True).start()

    tmp = tempfile.mkdtemp(prefix="relais-bench-")
    db_url = normalise_database_url(os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.db")
    own_redis = None
    redis_url = os.environ.get("BENCH_REDIS_URL", "")
    if not redis_url:
        from tests.drills.processes import redis_binary

        argv = [redis_binary(), "--port", "18204", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        own_redis = subprocess.Popen(argv, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(own_redis.terminate)  # however the bench ends
        redis_url = "redis://127.0.0.1:18204/0"
        time.sleep(0.5)
    # The bench and the worker read the same settings (the same keys decrypt the shop's secrets).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "RELAIS_", "SHOPIFY_"))}
    env.update(
        RELAIS_ENV="development",
        SECRET_KEY="bench-secret-key-" + "x" * 32,
        RELAIS_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        SANDBOX_SHIP_DELAY="3600",
        RELAIS_WORKER_PROCESSES=str(args.workers),
        RELAIS_WORKER_CLASS=args.worker_class,
        RELAIS_WORKER_THREADS=str(args.threads),
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    )
    settings = load_settings(env)
    runtime = build_runtime(settings, redis.Redis.from_url(redis_url))
    set_runtime(runtime)
    runtime.redis.flushdb()
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade_database(db_url)

    with transaction(runtime.sessions) as session:
        shop = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            "bench.myshopify.com",
            {"access_token": "shpat_bench"},
            "sandbox",
            {"token": "bench", "url": f"http://127.0.0.1:{stub.server_port}"},
        )
        shop_id = shop.id
        for i in range(args.orders):
            body = json.dumps(demo_order(10_000_000 + i, CUSTOMERS[i % len(CUSTOMERS)])).encode()
            session.add(
                WebhookEvent(
                    source="shopify",
                    delivery_key=f"bench:{i}",
                    shop_id=shop_id,
                    topic="orders/paid",
                    headers={},
                    body=body,
                )
            )
    with runtime.sessions() as session:
        ids = session.scalars(select(WebhookEvent.id)).all()
    for event_id in ids:
        enqueue_event(runtime, event_id)

    start = time.monotonic()
    worker = subprocess.Popen([sys.executable, "-m", "jobs.worker"], cwd=ROOT, env=env)
    peak = 0.0
    pushed = 0
    try:
        while time.monotonic() - start < 600:
            peak = max(peak, pss_mb(worker.pid))
            with runtime.sessions() as session:
                pushed = session.scalar(select(func.count()).select_from(Order).where(Order.state == "pushed")) or 0
            if pushed >= args.orders:
                break
            time.sleep(0.2)
    finally:
        elapsed = time.monotonic() - start
        worker.terminate()
        worker.wait(30)
    rate = pushed / elapsed
    with runtime.sessions() as session:
        first, last = session.execute(
            select(func.min(OrderTransition.at), func.max(OrderTransition.at)).where(
                OrderTransition.to_state == "pushed"
            )
        ).one()
    steady = (pushed - 1) / max((last - first).total_seconds(), 1e-6) if pushed > 1 else 0.0
    db = runtime.engine.dialect.name
    workers = f"{args.workers} {args.worker_class} workers x {args.threads} threads"
    print(f"database {db}, {workers}, provider latency {args.latency * 1000:.0f} ms")
    print(f"orders pushed: {pushed}/{args.orders} in {elapsed:.1f} s (includes worker start-up)")
    print(f"provider create calls received: {StubProvider.received}")
    print(f"throughput, start-up included: {rate:.1f} orders/s; ratio to the 100 orders/s goal: {rate / 100:.2f}")
    print(f"throughput, first to last push: {steady:.1f} orders/s; ratio to the 100 orders/s goal: {steady / 100:.2f}")
    print(f"peak memory of the worker tree (PSS): {peak:.0f} MB; ratio to 512 MB: {peak / 512:.2f}")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    runtime.redis.flushdb()


if __name__ == "__main__":
    main()
