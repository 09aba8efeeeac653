"""Burst bench: 1,000 orders through the fake ShipBob with its rate limit on, from several worker
processes that share one Redis limiter, as Relais' RQ workers do.

ShipBob allows 150 requests per minute (sliding window). The bench scales the window (150 per
6 s by default, ten times faster) and scales the figures back to per minute. A create that
raises ``RetryableError`` is retried after ``retry_after`` as the job queue would; an order is a
failure only when every attempt failed.

Two ratios are printed: against the steady ceiling (150/min), which the first window's burst can
push above 1 in a short run, and against the best schedule a sliding window allows for this many
orders ((ceil(N/limit) - 1) windows), which cannot exceed 1 and is the goal (>= 0.9).

    .venv/bin/python -m bench.shipbob_burst [--orders 1000] [--processes 4] [--threads 2]
                                            [--limit 150] [--window 6] [--redis-db 3]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import redis
import requests

from config import Settings
from integrations.errors import RetryableError
from integrations.fulfilment.base import ProviderContext
from integrations.fulfilment.shipbob import ShipBobProvider
from integrations.model import Address, Line, Order
from tests.fakes.shipbob import make_secret, start_fake

ATTEMPTS = 8


def _order(number: int) -> Order:
    return Order(
        platform_order_id=str(number),
        name=f"#{number}",
        paid=True,
        cancelled=False,
        updated_at=datetime.now(UTC),
        lines=(Line("1", "MUG-BLUE", 1, True, "Blue mug"), Line("2", "TEE-M", 2, True, "T-shirt, M")),
        ship_to=Address(name="Ada Lovelace", address1="100 N Racine Ave", city="Chicago", country_code="US"),
        shipping_method="Standard",
    )


def _thread(options: dict[str, str], url: str, redis_db: int, numbers: Any, stats: Counter[str], lock: Any) -> None:
    """One worker thread: its own HTTP session and Redis connection, the account's shared limiter."""
    connection = redis.Redis(host="127.0.0.1", port=6379, db=redis_db)
    with requests.Session() as http:
        context = ProviderContext(
            http=http, settings=Settings(shipbob_api_url=url, provider_timeout=10), redis=connection
        )
        provider = ShipBobProvider(options, context)
        while True:
            number = numbers.get()
            if number is None:
                break
            for attempt in range(ATTEMPTS):
                try:
                    provider.create_order(_order(number), f"1-{number}")
                    outcome = {"created": 1}
                except RetryableError as exc:
                    outcome = {
                        "retries": 1,
                        "429 received": int(exc.status == 429),
                        "failed": int(attempt == ATTEMPTS - 1),
                    }
                    time.sleep(exc.retry_after or 1.0)
                with lock:
                    stats.update(outcome)
                if "created" in outcome:
                    break
    connection.close()


def _process(options: dict[str, str], url: str, redis_db: int, threads: int, numbers: Any, out: Any) -> None:
    stats: Counter[str] = Counter()
    lock = threading.Lock()
    workers = [
        threading.Thread(target=_thread, args=(options, url, redis_db, numbers, stats, lock)) for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(dict(stats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--redis-db", type=int, default=3)
    args = parser.parse_args()

    fake = start_fake(token=f"pat-bench-{uuid.uuid4().hex}", rate_limit=args.limit, rate_window=args.window)
    options = {
        "token": fake.token,
        "channel_id": str(fake.channel_id),
        "webhook_secret": make_secret(),
        "rate_limit": str(args.limit),
        "rate_window": str(args.window),
        "rate_max_wait": str(args.window * 2),
    }
    context = multiprocessing.get_context("spawn")
    numbers, out = context.Queue(), context.Queue()
    for number in range(1, args.orders + 1):
        numbers.put(number)
    for _ in range(args.processes * args.threads):
        numbers.put(None)
    workers = [
        context.Process(target=_process, args=(options, fake.url, args.redis_db, args.threads, numbers, out))
        for _ in range(args.processes)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    totals: Counter[str] = Counter()
    for _ in workers:
        totals.update(out.get())
    elapsed = time.monotonic() - started
    for worker in workers:
        worker.join()
    fake.stop()
    client = redis.Redis(host="127.0.0.1", port=6379, db=args.redis_db)
    for key in client.scan_iter("relais:ratelimit:shipbob:*"):
        client.delete(key)
    client.close()

    # one bench window stands for one of ShipBob's minutes
    per_minute = totals["created"] / elapsed * args.window
    ceiling = args.limit
    best = (math.ceil(args.orders / args.limit) - 1) * args.window
    print(f"orders: {args.orders} through {args.processes} processes x {args.threads} threads")
    print(f"window: {args.limit} per {args.window:g} s (ShipBob: {args.limit} per 60 s); elapsed {elapsed:.1f} s")
    print(f"achieved: {per_minute:.1f} orders/min (scaled to ShipBob's minute); ceiling {ceiling:.0f}/min")
    print(f"ratio vs steady ceiling: {per_minute / ceiling:.3f}")
    print(f"ratio vs best sliding-window schedule ({best:.0f} s): {best / elapsed:.3f}")
    print(f"created at ShipBob: {fake.counters['orders_created']}; failed orders: {totals['failed']}")
    print(f"429s received by workers: {totals['429 received']}; 429s sent by ShipBob: {fake.counters['429']}")
    print(f"retries: {totals['retries']}; most requests in one window at ShipBob: {fake.max_in_window}")


if __name__ == "__main__":
    main()
