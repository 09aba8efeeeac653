"""How fast the WooCommerce receiver acknowledges a signed delivery (WooCommerce waits 60 s at
most and counts anything slower as a failure; we aim well under 2 s even at p99).

The bench serves the app over real HTTP (werkzeug, threaded), registers one store, and sends N
signed ``order.updated`` bodies as WooCommerce does (``\\/`` escapes), each a new state of one of
a few orders, from C concurrent senders. It prints p50/p95/p99/max of the time to the 200 (verify,
dedup key, inbox commit, enqueue) and its ratio to 2 s.

    .venv/bin/python bench/woocommerce_ingest.py [--deliveries 500] [--senders 4]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/relais_woo  (default: a SQLite file)
    BENCH_REDIS_URL=redis://127.0.0.1:6379/6                             (default)
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import text  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from app import create_app  # noqa: E402
from config import Settings, normalise_database_url  # noqa: E402
from integrations.woocommerce.webhooks import sign  # noqa: E402
from jobs.runtime import build_runtime  # noqa: E402
from sandbox.woocommerce.state import sample  # noqa: E402
from sandbox.woocommerce.store import wp_json_encode  # noqa: E402
from store.db import transaction  # noqa: E402
from store.models import Base  # noqa: E402
from store.shops import upsert_shop  # noqa: E402

SECRET = "BenchWebhookSecret0123456789abcdefXYZ"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    url = normalise_database_url(os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    settings = Settings(
        environment="test",
        database_url=url,
        redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"),
        log_level="WARNING",
    )
    runtime = build_runtime(settings, redis.Redis.from_url(settings.redis_url))
    runtime.redis.flushdb()
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    Base.metadata.create_all(runtime.engine)
    with transaction(runtime.sessions) as session:
        creds = {"consumer_key": "ck_bench", "consumer_secret": "cs_bench", "webhook_secret": SECRET}
        shop_id = upsert_shop(session, runtime.vault, "woocommerce", "https://bench.example", creds, "sandbox", {}).id
    app = create_app(runtime=runtime)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would drown the result
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}/webhooks/woocommerce/{shop_id}"
    order = sample("order_retrieve_v3.json")
    http = requests.Session()

    def deliver(n: int) -> float:
        body = wp_json_encode(
            {
                **order,
                "id": 1000 + n % 20,
                "date_modified_gmt": f"2026-11-20T10:{n // 60 % 60:02}:{n % 60:02}",
                "customer_note": f"delivery {n}",
            }
        )
        headers = {
            "Content-Type": "application/json",
            "X-WC-Webhook-Topic": "order.updated",
            "X-WC-Webhook-Signature": sign(SECRET, body),
            "X-WC-Webhook-Delivery-ID": "d" * 32,
        }
        start = time.perf_counter()
        answer = http.post(endpoint, data=body, headers=headers, timeout=60)
        elapsed = time.perf_counter() - start
        assert answer.status_code == 200, answer.text
        return elapsed

    with ThreadPoolExecutor(args.senders) as pool:
        times = sorted(pool.map(deliver, range(args.deliveries)))
    server.shutdown()
    q = statistics.quantiles(times, n=100)
    p50, p95, p99 = q[49], q[94], q[98]
    print(
        f"{runtime.engine.dialect.name}: {args.deliveries} deliveries, {args.senders} senders: "
        f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms; "
        f"p99 / 2 s = {p99 / 2:.4f}"
    )
    runtime.redis.flushdb()


if __name__ == "__main__":
    main()
