"""Stock sync bench: 10,000 SKUs from the sandbox warehouse to the fake Shopify on the standard plan.

The whole sync runs as in production (``jobs.stock.run``): the sandbox 3PL served over HTTP by the
app itself, SQLite (or ``--database-url``), Redis db 4, and the fake Shopify enforcing Shopify's
standard-plan GraphQL throttle (100 points/s restored, 1,000-point bucket) and checking every
document against the 2026-10 schema.

Phases, each starting with a full bucket: 1% of SKUs changed; 100% changed; then five 100%-changed
syncs back to back, which is more than one bucket holds. For each: API calls, points spent, wall
time, the throttle's minimum for that work (the points beyond what the bucket held at the start,
divided by the restore rate) and wall ÷ minimum where that minimum is over a second (goal ≤ 1.25),
and throttled answers (goal 0). The SKU map is built first with a faster bucket (its figures are
printed with what the standard plan would take): it is a one-off, redone daily.

A large catalogue (``--large 100000``, ``bench.stock_large``): the SKU map paged (before) and read
by a Shopify bulk operation (after), 10,000 SKUs and the large size, each in its own process,
with 1% changed, the throttle's minimum, the ratio, throttled answers and peak memory.

    .venv/bin/python -m bench.stock_sync [--skus 10000] [--database-url URL] [--redis-db 4]
    .venv/bin/python -m bench.stock_sync --large 100000 [--modes paged,bulk]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis as redis_lib
from sqlalchemy import update
from werkzeug.serving import make_server

from app import create_app
from config import Settings, normalise_database_url
from integrations.shopify.admin import THROTTLE
from jobs.runtime import build_runtime
from jobs.stock import run
from sandbox.api import account_of
from sandbox.models import SandboxStock
from store.db import transaction
from store.models import Base
from store.shops import upsert_shop
from tests.fakes.shopify_admin import FakeShopifyAdmin

LOCATION = "gid://shopify/Location/64500000001"
TOKEN = "bench-warehouse"
RATE, BUCKET = 100.0, 1000.0  # Shopify standard plan


def _setup(skus: int, database_url: str, redis_db: int) -> tuple[Any, FakeShopifyAdmin, int, Any]:
    fake = FakeShopifyAdmin("shpat_bench", restore_rate=1_000_000, maximum=1_000_000).start()
    settings = Settings(
        environment="test",
        database_url=database_url,
        redis_url=f"redis://127.0.0.1:6379/{redis_db}",
        shopify_admin_url=fake.url + "/{shop}",
        log_level="WARNING",
    )
    server = make_server("127.0.0.1", 0, lambda e, s: holder["app"](e, s), threaded=True)
    holder: dict[str, Any] = {}
    runtime = build_runtime(
        settings.with_(public_url=f"http://127.0.0.1:{server.server_port}"),
        redis_lib.Redis(host="127.0.0.1", port=6379, db=redis_db),
    )
    runtime.redis.flushdb()  # the bench's own database number
    Base.metadata.drop_all(runtime.engine)
    Base.metadata.create_all(runtime.engine)
    holder["app"] = create_app(runtime=runtime)
    for noisy in ("werkzeug", "integrations.shopify.admin"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            "bench.myshopify.com",
            {"access_token": "shpat_bench"},
            "sandbox",
            {"token": TOKEN},
            {"location_id": LOCATION},
        )
        shop_id = shop.id
        session.add_all(
            SandboxStock(account=account_of(TOKEN), sku=f"SKU-{n:05}", on_hand=10, committed=0) for n in range(skus)
        )
    for n in range(skus):
        fake.inventory.add_item(f"SKU-{n:05}", LOCATION, available=0)
    return runtime, fake, shop_id, server


def _restock(runtime: Any, every: int, delta: int) -> None:
    """Change the warehouse's on-hand of every ``every``-th SKU."""
    with transaction(runtime.sessions) as session:
        rows = session.query(SandboxStock.id, SandboxStock.sku).all()
        ids = [row_id for row_id, sku in rows if int(sku.rsplit("-", 1)[1]) % every == 0]
        session.execute(
            update(SandboxStock).where(SandboxStock.id.in_(ids)).values(on_hand=SandboxStock.on_hand + delta)
        )


def _bucket(fake: FakeShopifyAdmin) -> float:
    with fake._lock:  # the bench reads the fake's own state, as a test does
        return min(fake.maximum, fake._available + fake.restore_rate * (time.monotonic() - fake._at))


def _phase(name: str, runtime: Any, fake: FakeShopifyAdmin, shop_id: int, syncs: int, every: int) -> None:
    while _bucket(fake) < fake.maximum - 1:  # start full, as after a quiet spell
        time.sleep(0.2)
    requests0, points0, throttled0 = fake.requests, fake.points_spent, fake.throttled
    level = _bucket(fake)
    written = 0
    started = time.perf_counter()
    for index in range(syncs):
        _restock_time = time.perf_counter()
        _restock(runtime, every, 1 if index % 2 == 0 else -1)
        started += time.perf_counter() - _restock_time  # the warehouse's change is not the sync's work
        outcome = run(runtime, shop_id, trigger="bench")
        assert outcome.status == "ok", outcome
        written += outcome.written
    wall = time.perf_counter() - started
    points = fake.points_spent - points0
    minimum = max(0.0, points - level) / fake.restore_rate
    ratio = f"{wall / minimum:.2f}" if minimum >= 1 else "n/a (the work fits in the bucket)"
    print(
        f"{name:<34} {written:>7} written  {fake.requests - requests0:>4} calls  {points:>6} points  "
        f"wall {wall:6.2f}s  minimum {minimum:5.2f}s  ratio {ratio}  throttled {fake.throttled - throttled0}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-db", type=int, default=4)
    parser.add_argument("--large", type=int, default=0, help="only the large-catalogue phases, at 10,000 and this size")
    parser.add_argument("--modes", default="paged,bulk", help="large catalogue: paged (before), bulk (after)")
    args = parser.parse_args()
    if args.large:
        from bench.stock_large import run_all

        run_all(sorted({10_000, args.large}), args.modes.split(","), args.redis_db)
        return
    folder = Path(tempfile.mkdtemp(prefix="relais-stock-bench-"))
    url = normalise_database_url(args.database_url) if args.database_url else f"sqlite:///{folder / 'bench.db'}"
    runtime, fake, shop_id, server = _setup(args.skus, url, args.redis_db)
    try:
        started = time.perf_counter()
        outcome = run(runtime, shop_id, trigger="bench")  # builds the SKU map, writes every SKU once
        map_calls, map_points = fake.operations["inventoryItems"], fake.points_spent - 10 * outcome.calls
        print(
            f"setup: SKU map of {args.skus} items in {map_calls} calls, {map_points} points "
            f"(standard plan: ≥ {max(0, map_points - BUCKET) / RATE:.0f}s), first full write {outcome.calls} calls, "
            f"{time.perf_counter() - started:.1f}s"
        )
        # From here on, Shopify's standard plan. The client learns it from the next answer.
        with fake._lock:
            fake.restore_rate, fake.maximum = RATE, BUCKET
            fake._available, fake._at = BUCKET, time.monotonic()
        THROTTLE._buckets.clear()
        _phase("1% changed", runtime, fake, shop_id, 1, 100)
        _phase("100% changed", runtime, fake, shop_id, 1, 1)
        _phase("100% changed, 5 syncs back to back", runtime, fake, shop_id, 5, 1)
    finally:
        server.shutdown()
        fake.stop()
        runtime.redis.flushdb()


if __name__ == "__main__":
    main()
