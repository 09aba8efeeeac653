"""The Redis sliding-window limiter shared by worker processes (real Redis, real processes)."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from integrations.errors import RetryableError
from integrations.fulfilment.ratelimit import SlidingWindowLimiter


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)  # the suite's real Redis (tests/conftest.py)
    yield connection
    connection.close()


@pytest.fixture
def key(client: redis.Redis) -> Iterator[str]:
    name = f"test:{uuid.uuid4().hex}"
    yield name
    for stored in client.scan_iter(f"relais:ratelimit:{name}*"):
        client.delete(stored)


def _take_slots(redis_url: str, key: str, count: int, out: multiprocessing.Queue) -> None:
    """A worker process: its own connection and limiter, the same account key."""
    client = redis.Redis.from_url(redis_url)
    limiter = SlidingWindowLimiter(client, key, limit=10, window=1.0, max_wait=30, margin=0.05)
    stamps = []
    for _ in range(count):
        limiter.acquire()
        stamps.append(time.time())
    client.close()
    out.put(stamps)


def test_two_processes_sharing_the_limiter_never_exceed_the_window(key: str, redis_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_take_slots, args=(redis_url, key, 15, out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)

    stamps = sorted(results[0] + results[1])
    assert len(stamps) == 30
    # any 11 consecutive admissions span more than the 1 s window
    assert min(stamps[n + 10] - stamps[n] for n in range(len(stamps) - 10)) >= 1.0
    assert stamps[-1] - stamps[0] >= 2.0  # 30 slots at 10 per second: two full windows of waiting


def test_limiter_gives_up_after_max_wait_with_a_retryable_error(client: redis.Redis, key: str) -> None:
    limiter = SlidingWindowLimiter(client, key, limit=2, window=5.0, max_wait=0.2)
    limiter.acquire()
    limiter.acquire()

    started = time.monotonic()
    with pytest.raises(RetryableError) as caught:
        limiter.acquire()

    assert time.monotonic() - started < 0.1  # it does not sleep when the wait is already too long
    assert 4.5 < caught.value.retry_after <= 5.1


def test_a_block_recorded_by_one_process_makes_the_others_wait(client: redis.Redis, key: str, redis_url: str) -> None:
    other = redis.Redis.from_url(redis_url)
    first = SlidingWindowLimiter(client, key, limit=100, window=60.0)
    second = SlidingWindowLimiter(other, key, limit=100, window=60.0)

    first.block(0.5)
    started = time.monotonic()
    second.acquire()

    assert time.monotonic() - started >= 0.45
    assert second.blocked_for() == 0
    other.close()


def test_a_block_never_shortens_a_longer_one(client: redis.Redis, key: str) -> None:
    limiter = SlidingWindowLimiter(client, key, limit=100, window=60.0)

    limiter.block(30)
    limiter.block(1)

    assert limiter.blocked_for() > 29
