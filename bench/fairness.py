"""Per-shop fairness, measured: a small shop's order latency while a big shop imports, vs alone.

The real worker process (``python -m jobs.worker``, the Procfile line) against a provider stub
answering in 100 ms (the sandbox API's create call, ``bench/worker_throughput.py``'s stub). Shop B
first sends 20 paid orders alone; then shop A imports 5,000 paid orders (stored and enqueued as
fast as the receiver would), and shop B sends 20 more spread over the import. Each order is
delivered as the webhook receiver does it (inbox row committed, then ``enqueue_event``); its
latency is from that delivery to the provider receiving its create call. Prints B's p50/p99
alone and during the import, and their ratio; ``--fair-share 0`` measures without fairness.

    .venv/bin/python bench/fairness.py [--orders 5000] [--small 20] [--fair-share 50] [--workers 8]
    BENCH_DATABASE_URL=postgresql://…   (default: a SQLite file)
    BENCH_REDIS_URL=redis://127.0.0.1:6379/13   (default; flushed)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.worker_throughput import StubProvider  # noqa: E402
from cli.serve import upgrade_database  # noqa: E402
from config import Settings, normalise_database_url  # noqa: E402
from jobs.maintenance import enqueue_event  # noqa: E402
from jobs.runtime import Runtime, build_runtime, set_runtime  # noqa: E402
from sandbox.demo import CUSTOMERS, demo_order  # noqa: E402
from store.db import make_engine, transaction  # noqa: E402
from store.models import WebhookEvent  # noqa: E402
from store.shops import upsert_shop  # noqa: E402

SECRET = "bench-fairness-secret-key-0123456789"  # nosec B105 # the bench's own throwaway key
ARRIVED: dict[str, float] = {}  # provider reference → when its create call arrived


class TimedProvider(StubProvider):
    """The 100 ms stub, noting when each order's create call arrives (by its reference)."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        ARRIVED.setdefault(body["reference"], time.monotonic())
        time.sleep(self.latency)
        answer = json.dumps({"id": next(self.counter), "reference": body["reference"], "status": "processing"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def deliver(runtime: Runtime, shop_id: int, numbers: list[int]) -> dict[str, float]:
    """Store and enqueue paid orders as the receiver does; reference → delivery time."""
    sent: dict[str, float] = {}
    with transaction(runtime.sessions) as session:
        rows = []
        for n in numbers:
            payload = demo_order(n, CUSTOMERS[n % len(CUSTOMERS)])
            rows.append(
                WebhookEvent(
                    source="shopify",
                    delivery_key=f"bench:{shop_id}:{n}",
                    shop_id=shop_id,
                    topic="orders/paid",
                    headers={},
                    body=json.dumps(payload).encode(),
                )
            )
        session.add_all(rows)
    stamp = time.monotonic()
    for row, n in zip(rows, numbers, strict=True):
        enqueue_event(runtime, row.id)
        sent[f"{shop_id}-{n}"] = stamp
    return sent


def wait_for(references: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(ref in ARRIVED for ref in references):
            return True
        time.sleep(0.05)
    return False


def latencies(sent: dict[str, float]) -> list[float]:
    return sorted(ARRIVED[ref] - at for ref, at in sent.items() if ref in ARRIVED)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=5000, help="the big shop's import")
    parser.add_argument("--small", type=int, default=20, help="the small shop's orders, in each phase")
    parser.add_argument("--fair-share", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--spread", type=float, default=30.0, help="seconds over which B's orders are sent")
    args = parser.parse_args()

    stub = ThreadingHTTPServer(("127.0.0.1", 0), TimedProvider)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="relais-fairness-")
    db_url = normalise_database_url(os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.db")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    settings = Settings(
        database_url=db_url, redis_url=redis_url, secret_key=SECRET, log_level="WARNING", sandbox_ship_delay=3600
    )
    if db_url.startswith("postgresql"):
        engine = make_engine(db_url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    upgrade_database(db_url)  # before the runtime: the sandbox it enables adds its tables to a migrated database
    runtime = build_runtime(settings.with_(fair_share=args.fair_share), redis.Redis.from_url(redis_url))
    set_runtime(runtime)
    runtime.redis.flushdb()
    url = f"http://127.0.0.1:{stub.server_port}"
    with transaction(runtime.sessions) as session:
        big, small = (
            upsert_shop(
                session,
                runtime.vault,
                "shopify",
                domain,
                {"access_token": "shpat_bench"},
                "sandbox",
                {"token": t, "url": url},
            ).id
            for domain, t in (("big.myshopify.com", "big"), ("small.myshopify.com", "small"))
        )

    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        SECRET_KEY=SECRET,
        RELAIS_WORKER_PROCESSES=str(args.workers),
        RELAIS_FAIR_SHARE=str(args.fair_share),
        SANDBOX_SHIP_DELAY="3600",
        SHOPIFY_ADMIN_URL="http://127.0.0.1:9/{shop}",  # nothing leaves this machine (cron's shop checks)
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        LOG_FORMAT="text",
    )
    worker = subprocess.Popen([sys.executable, "-m", "jobs.worker"], cwd=ROOT, env=env)
    try:
        # Warm-up: the pool is up and has pushed one order of its own.
        warm = deliver(runtime, small, [1])
        if not wait_for(list(warm), 60):
            raise SystemExit("the worker pushed nothing in 60 s")

        alone: dict[str, float] = {}
        for i in range(args.small):
            alone |= deliver(runtime, small, [100 + i])
            time.sleep(args.spread / args.small / 4)
        wait_for(list(alone), 120)

        import_started = time.monotonic()
        bulk = deliver(runtime, big, list(range(10_000_000, 10_000_000 + args.orders)))
        stored = time.monotonic() - import_started
        during: dict[str, float] = {}
        for i in range(args.small):
            time.sleep(args.spread / args.small)
            during |= deliver(runtime, small, [200 + i])
        b_done = wait_for(list(during), 900)
        left_when_b_done = sum(1 for ref in bulk if ref not in ARRIVED)
        wait_for(list(bulk), 1800)
        import_took = max(ARRIVED.get(ref, 0.0) for ref in bulk) - import_started
    finally:
        worker.terminate()
        worker.wait(60)

    a, d = latencies(alone), latencies(during)
    p50a, p99a, p50d, p99d = quantile(a, 0.5), quantile(a, 0.99), quantile(d, 0.5), quantile(d, 0.99)
    print(f"database {runtime.engine.dialect.name}, {args.workers} workers, provider 100 ms")
    print(f"RELAIS_FAIR_SHARE={args.fair_share}")
    print(
        f"shop A: {args.orders} orders stored and enqueued in {stored:.1f} s, at the provider after {import_took:.1f} s"
    )
    print(f"shop B alone:         {len(a)}/{args.small} orders, p50 {p50a * 1000:.0f} ms, p99 {p99a * 1000:.0f} ms")
    print(
        f"shop B during import: {len(d)}/{args.small} orders, p50 {p50d * 1000:.0f} ms, p99 {p99d * 1000:.0f} ms "
        f"({'all' if b_done else 'NOT all'} pushed while {left_when_b_done} of A's orders were still waiting)"
    )
    print(f"ratio during/alone: p50 {p50d / p50a:.1f}x, p99 {p99d / p99a:.1f}x")
    runtime.redis.flushdb()


if __name__ == "__main__":
    main()
