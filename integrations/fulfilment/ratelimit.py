"""A sliding-window request limiter kept in Redis, shared by every worker process of one account.

ShipBob allows 150 requests per minute per user and application, counted over a sliding window
across every endpoint, and answers 429 with ``x-retry-after`` beyond that [docs:
developer.shipbob.com/2026-07/rate-limit]. Six worker processes each limiting themselves would
send six times that, so the count lives in one Redis sorted set per provider account and is
checked and updated by one Lua script (atomic: two processes can never both take the last slot).
Times come from the Redis server's clock, so workers on different machines agree.

A 429 means our count and the provider's disagree (another application on the same account,
clock skew): ``block()`` records "blocked until" so every process waits, not only the one that
was refused.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from integrations.errors import RetryableError

# KEYS[1]: sorted set of admitted request times (ms); KEYS[2]: "blocked until" (ms).
# ARGV[1]: window (ms); ARGV[2]: limit; ARGV[3]: a unique member name.
# Returns 0 when a slot was taken, else the milliseconds until one may be free.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then
  return blocked - now
end
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

# KEYS[1]: "blocked until" (ms); ARGV[1]: block for this many ms. Only ever moves the time later.
_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local target = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if target > current then
  redis.call('SET', KEYS[1], target, 'PX', tonumber(ARGV[1]))
end
return target
"""


class SlidingWindowLimiter:
    """At most ``limit`` admissions in any ``window`` seconds, for every process sharing ``key``.

    ``margin`` widens the window we enforce a little: a request admitted first may reach the
    provider after one admitted later (network jitter), and the provider counts arrivals. By
    default it is 2% of the window, at most one second.
    """

    def __init__(
        self,
        redis: Any,
        key: str,
        *,
        limit: int = 150,
        window: float = 60.0,
        max_wait: float = 30.0,
        margin: float | None = None,
    ):
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.redis = redis
        self.key = f"relais:ratelimit:{key}"
        self.limit = limit
        self.window = window
        self.max_wait = max_wait
        self.margin = min(1.0, window * 0.02) if margin is None else margin
        self._acquire = redis.register_script(_ACQUIRE)
        self._block = redis.register_script(_BLOCK)

    @property
    def _blocked_key(self) -> str:
        return self.key + ":blocked"

    def try_acquire(self) -> float:
        """Take a slot now and return 0, or return the seconds until one may be free."""
        window_ms = int((self.window + self.margin) * 1000)
        member = uuid.uuid4().hex
        wait_ms = self._acquire(keys=[self.key, self._blocked_key], args=[window_ms, self.limit, member])
        return int(wait_ms) / 1000.0

    def acquire(self) -> None:
        """Block until a slot is ours; ``RetryableError`` if that would take longer than ``max_wait``.

        Giving up (rather than sleeping for minutes) hands the wait back to the job queue, which
        retries no sooner than ``retry_after`` without holding a worker.
        """
        deadline = time.monotonic() + self.max_wait
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return
            remaining = deadline - time.monotonic()
            if wait > remaining:
                raise RetryableError(
                    f"provider rate limit: no free request slot within {self.max_wait:g}s", retry_after=wait
                )
            # A little jitter so processes woken for the same slot do not all ask at once.
            time.sleep(wait + random.uniform(0, min(0.05, wait * 0.1)))  # nosec B311 # jitter, not a secret

    def block(self, seconds: float) -> None:
        """Make every process sharing this limiter wait ``seconds`` (the provider said so)."""
        if seconds > 0:
            self._block(keys=[self._blocked_key], args=[int(seconds * 1000)])

    def blocked_for(self) -> float:
        """Seconds left of a recorded block (0 when none)."""
        ttl_ms = self.redis.pttl(self._blocked_key)
        return max(0, int(ttl_ms)) / 1000.0
