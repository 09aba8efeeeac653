"""One small client for Shopify's GraphQL Admin API: auth, cost-based throttling, retries, errors.

Shopify meters GraphQL by *calculated query cost*, per app and per store: a bucket
(``maximumAvailable``, often 1000) refilling at ``restoreRate`` points a second, which must hold
the *requested* cost before a query runs. Every answer carries ``extensions.cost.throttleStatus``,
so the limits are read at run time, never hard-coded (dev stores have tiny buckets). The client
remembers each shop's bucket in-process and waits before a call the bucket cannot pay for; when
another process drained it anyway, the answer is a ``THROTTLED`` error and the client waits for
the refill and asks again (Shopify ran nothing). Other processes' spending is only seen through
those answers.

Errors follow ``integrations.errors``: transient ones become ``RetryableError``; 401/403 and
``ACCESS_DENIED`` become ``AuthError``; other GraphQL errors ``InvalidRequestError``; a mutation's
``userErrors`` become ``ShopifyUserError``. A mutation is never re-sent after a timeout or a 5xx,
whose outcome is unknown: the caller re-reads and decides (see ``fulfilment.write_parcel``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from config import Settings
from integrations.errors import AuthError, InvalidRequestError, RetryableError

log = logging.getLogger(__name__)

JSON = dict[str, Any]
DEFAULT_COST = 10.0  # before Shopify has priced a document once: about one mutation


class TokenRejected(AuthError):
    """HTTP 401: the access token is unknown or has expired (expiring offline tokens last an hour)."""


class ShopifyUserError(InvalidRequestError):
    """A mutation answered ``userErrors``: Shopify refused the input; repeating it cannot succeed.

    ``user_errors`` is the list of ``{"field": [...], "message": ..., "code": ...}`` as sent
    (``code`` is None where the payload type has none).
    """

    def __init__(self, operation: str, user_errors: list[JSON]) -> None:
        self.user_errors = [
            {"field": e.get("field"), "message": e.get("message", ""), "code": e.get("code")} for e in user_errors
        ]
        text = "; ".join(e["message"] for e in self.user_errors)
        super().__init__(f"Shopify refused {operation}: {text}", details=self.user_errors)


@dataclass
class _Bucket:
    maximum: float
    available: float
    rate: float
    at: float  # time.monotonic() of the last reading

    def level(self, now: float) -> float:
        return min(self.maximum, self.available + self.rate * (now - self.at))


class ThrottleBook:
    """What this process last learnt of each shop's cost bucket, and the cost of each document."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._costs: dict[str, float] = {}

    def cost_of(self, document: str) -> float:
        with self._lock:
            return self._costs.get(document, DEFAULT_COST)

    def reserve(self, shop: str, cost: float) -> float:
        """Seconds to wait before spending ``cost``; the points are taken now, so threads queue up."""
        with self._lock:
            bucket = self._buckets.get(shop)
            if bucket is None or bucket.rate <= 0:
                return 0.0
            now = time.monotonic()
            level = bucket.level(now)
            wait = max(0.0, (cost - level) / bucket.rate)
            bucket.available, bucket.at = level - cost, now
            return wait

    def record(self, shop: str, document: str, cost: Mapping[str, Any] | None) -> None:
        """Adopt the bucket state and the requested cost that Shopify reported in ``extensions.cost``."""
        if not cost:
            return
        status = cost.get("throttleStatus") or {}
        with self._lock:
            if cost.get("requestedQueryCost") is not None:
                self._costs[document] = float(cost["requestedQueryCost"])
            if {"maximumAvailable", "currentlyAvailable", "restoreRate"} <= status.keys():
                self._buckets[shop] = _Bucket(
                    maximum=float(status["maximumAvailable"]),
                    available=float(status["currentlyAvailable"]),
                    rate=float(status["restoreRate"]),
                    at=time.monotonic(),
                )


THROTTLE = ThrottleBook()  # per process, shared by every client of every shop


def _retry_after(response: requests.Response, default: float) -> float:
    # Shopify sends fractional seconds ("2.0"); a missing or odd header falls back to the default.
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return default


def _error_codes(errors: list[Any]) -> set[str]:
    return {str((e.get("extensions") or {}).get("code", "")) for e in errors if isinstance(e, dict)}


class AdminClient:
    """GraphQL Admin API of one shop. Not tied to a request: jobs build one per shop and call."""

    def __init__(
        self,
        shop: str,
        access_token: str,
        settings: Settings,
        http: requests.Session | None = None,
        *,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        throttle: ThrottleBook = THROTTLE,
    ) -> None:
        self.shop = shop
        self.url = settings.shopify_admin_url.format(shop=shop).rstrip("/") + (
            f"/admin/api/{settings.shopify_api_version}/graphql.json"
        )
        self._token = access_token
        self._http = http or requests.Session()
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._max_wait = max_wait  # longer waits go back to the job queue as RetryableError
        self._sleep = sleep
        self._throttle = throttle

    def query(self, document: str, variables: Mapping[str, Any] | None = None) -> JSON:
        """Run a query; returns ``data``. Transient failures are retried here a few times."""
        return self._execute(document, variables, resend_unknown=True)

    def mutate(self, document: str, variables: Mapping[str, Any], field: str) -> JSON:
        """Run a mutation; returns the payload under ``field``; raises ``ShopifyUserError`` on userErrors."""
        data = self._execute(document, variables, resend_unknown=False)
        payload = data.get(field) or {}
        if payload.get("userErrors"):
            raise ShopifyUserError(field, payload["userErrors"])
        return payload

    def _execute(self, document: str, variables: Mapping[str, Any] | None, *, resend_unknown: bool) -> JSON:
        body = {"query": document, "variables": dict(variables or {})}
        headers = {"X-Shopify-Access-Token": self._token, "Content-Type": "application/json", "User-Agent": "Relais"}
        for attempt in range(1, self._attempts + 1):
            last = attempt == self._attempts
            self._pace(document)
            try:
                response = self._http.post(self.url, json=body, headers=headers, timeout=self._timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                if not resend_unknown or last:
                    raise RetryableError(f"Shopify {self.shop} unreachable: {type(exc).__name__}") from exc
                self._sleep(self._backoff * 2 ** (attempt - 1))
                continue
            status = response.status_code
            if status == 401:  # nothing ran; an expiring token may be refreshed and the call sent again
                raise TokenRejected(f"Shopify {self.shop} refused the access token (HTTP 401)")
            if status == 403:
                raise AuthError(f"Shopify {self.shop} refused the access token (HTTP {status})")
            if status == 429:
                # Throttled before execution: safe to send again, queries and mutations alike.
                wait = _retry_after(response, 1.0)
                if last or wait > self._max_wait:
                    raise RetryableError(f"Shopify {self.shop} rate limit (429)", retry_after=wait, status=429)
                log.info("shopify %s: 429, waiting %.2fs", self.shop, wait)
                self._sleep(wait)
                continue
            if status >= 500:
                wait = _retry_after(response, self._backoff * 2 ** (attempt - 1))
                if not resend_unknown or last or wait > self._max_wait:
                    raise RetryableError(f"Shopify {self.shop} answered HTTP {status}", retry_after=wait, status=status)
                self._sleep(wait)
                continue
            if status >= 400:
                raise InvalidRequestError(f"Shopify {self.shop} answered HTTP {status}", status=status)
            try:
                answer = response.json()
            except ValueError as exc:
                raise RetryableError(f"Shopify {self.shop} sent a non-JSON answer", status=status) from exc
            cost = (answer.get("extensions") or {}).get("cost")
            self._throttle.record(self.shop, document, cost)
            errors = answer.get("errors")
            if not errors:
                return answer.get("data") or {}
            if isinstance(errors, str):  # REST-style {"errors": "..."}
                raise InvalidRequestError(f"Shopify {self.shop}: {errors}", status=status, details=errors)
            codes = _error_codes(errors)
            if "THROTTLED" in codes:
                wait = self._refill_time(cost)
                if last or wait > self._max_wait:
                    raise RetryableError(f"Shopify {self.shop} throttled", retry_after=wait, status=status)
                log.info("shopify %s: THROTTLED, waiting %.2fs for the bucket", self.shop, wait)
                self._sleep(wait)
                continue
            message = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            if "ACCESS_DENIED" in codes:
                raise AuthError(f"Shopify {self.shop} denied access (missing scope?): {message}")
            raise InvalidRequestError(f"Shopify {self.shop}: {message}", status=status, details=errors)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _pace(self, document: str) -> None:
        wait = self._throttle.reserve(self.shop, self._throttle.cost_of(document))
        if wait > 0:
            log.info("shopify %s: pacing %.2fs for the cost bucket", self.shop, wait)
            self._sleep(min(wait, self._max_wait))

    def _refill_time(self, cost: Mapping[str, Any] | None) -> float:
        """Seconds until the bucket holds the requested cost again, from the THROTTLED answer."""
        if not cost:
            return 1.0
        status = cost.get("throttleStatus") or {}
        rate = float(status.get("restoreRate") or 0)
        short = float(cost.get("requestedQueryCost") or 0) - float(status.get("currentlyAvailable") or 0)
        return max(0.05, short / rate) if rate > 0 else 1.0
