"""At most N requests in flight to one store, across every worker process (a Redis semaphore).

WooCommerce documents no REST rate limit; the limits are the host's (PHP workers, WAF), and a
small shop on shared hosting falls over under a burst (reference §7, §11.14). So every call to a
store holds one of its few slots. A slot is a lease in a Redis sorted set scored by its expiry:
a worker killed mid-request frees its slot when the lease runs out, never holding it for good.
Without Redis (a one-off script) a process-local semaphore does the same job for one process.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from integrations.errors import RetryableError

# KEYS[1]: sorted set of holders scored by lease expiry (ms). ARGV: lease ms, limit, token.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
  return 1
end
return 0
"""

_local_lock = threading.Lock()
_local: dict[str, threading.BoundedSemaphore] = {}


class StoreSlots:
    """``with slots.hold(): ...`` waits for one of ``limit`` slots of the store ``name``."""

    def __init__(self, redis: Any, name: str, limit: int = 2, lease: float = 90.0, wait: float = 120.0) -> None:
        self.redis = redis
        self.key = "relais:woo:slots:" + hashlib.sha256(name.encode()).hexdigest()[:32]
        self.limit = limit
        self.lease_ms = int(lease * 1000)
        self.wait = wait

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self.redis is None:
            with _local_lock:
                semaphore = _local.setdefault(self.key, threading.BoundedSemaphore(self.limit))
            if not semaphore.acquire(timeout=self.wait):
                raise RetryableError("store busy: no request slot free", retry_after=5)
            try:
                yield
            finally:
                semaphore.release()
            return
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait
        pause = 0.01
        while not self.redis.eval(_ACQUIRE, 1, self.key, self.lease_ms, self.limit, token):
            if time.monotonic() > deadline:
                raise RetryableError("store busy: no request slot free", retry_after=5)
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
        try:
            yield
        finally:
            self.redis.zrem(self.key, token)
