"""A small client for the WooCommerce REST API v3, on ``requests``.

Every call goes through ``request``: auth by the store's ladder (``auth.py``), one of the
store's two request slots (``slots.py``), the guarded session for merchant-given hosts
(``integrations.outbound``: public addresses only in production, checked at connect time, no
redirects, 5 s to connect and 15 s to answer, answers size-capped), retries with exponential backoff and
jitter on 429/5xx/timeouts (``Retry-After`` honoured), and errors named for what the caller
must do (``integrations.errors``):

- ``401 woocommerce_rest_authentication_error`` (wrong secret, bad signature, no write
  permission) and a 401 ``woocommerce_rest_cannot_*`` that survives every auth mode → ``AuthError``
  with WooCommerce's message and what to fix;
- an HTML page where JSON was expected is a firewall or security plugin answering for the store
  (Cloudflare, ModSecurity, Wordfence): ``StoreBlocked`` (an ``AuthError``: retrying will not help);
- ``501`` on PUT/DELETE (ModSecurity) → the same call again as POST with ``X-HTTP-Method-Override``;
- ``413`` on a batch → ``BatchTooLarge``; other 4xx → ``InvalidRequestError``; 404 → ``NotFoundError``;
- an address the guard refuses (private, redirecting, plain http in production) → ``StoreUnreachable``
  (an ``InvalidRequestError``) carrying only the guard's plain reason.

Error texts are stored for the merchant: they name the call (``GET /wc/v3/orders``), the status and
WooCommerce's own short message, never the URL (query-string keys), a body, or an exception's text.

A POST that creates something (a note, a tracking entry, a webhook) is not re-sent after a
timeout or a 5xx, whose outcome is unknown: ``RetryableError`` goes to the caller, who re-reads
before writing again. WooCommerce's own Python package has none of this (reference §9.3).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from integrations.errors import AuthError, InvalidRequestError, NotFoundError, RetryableError
from integrations.outbound import OutboundError, OutboundPolicy, StoreUnreachable, guarded
from integrations.woocommerce import auth
from integrations.woocommerce.slots import StoreSlots

log = logging.getLogger(__name__)

TIMEOUT = (5.0, 15.0)  # connect, read: the guard's ceiling (a store slower than that is retried later)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_WAIT = 30.0  # seconds of backoff spent inside one call before handing back to the job
PER_PAGE = 100  # WP collections accept 1-100


class StoreBlocked(AuthError):
    """The store answered an HTML page instead of JSON: a firewall or plugin stands in front."""


class BatchTooLarge(InvalidRequestError):
    """413 ``woocommerce_rest_request_entity_too_large``: the store takes fewer items per batch."""


@dataclass
class WooResponse:
    status: int
    data: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, Any] = field(default_factory=dict)


class WooClient:
    """REST v3 calls to one store. ``store_url`` is the site's address (``https://shop.example``).

    ``http`` lends its User-Agent and trusted certificates; the calls themselves go through a
    session guarded by ``policy`` (default: production's, public https hosts only)."""

    def __init__(
        self,
        store_url: str,
        consumer_key: str,
        consumer_secret: str,
        http: requests.Session,
        *,
        redis: Any = None,
        timeout: tuple[float, float] = TIMEOUT,
        attempts: int = 4,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        policy: OutboundPolicy | None = None,
    ) -> None:
        self.store_url = store_url.rstrip("/")
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.http = guarded(http, policy or OutboundPolicy())
        self.redis = redis
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep
        self.slots = StoreSlots(redis, self.store_url, lease=timeout[0] + timeout[1] + 10)
        self._mode_key = "relais:woo:auth:" + self.store_url
        self._override_key = "relais:woo:override:" + self.store_url
        self.calls = 0

    # --- the public verbs -------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None, namespace: str = "wc/v3") -> Any:
        return self.request("GET", path, params=params, namespace=namespace).data

    def put(self, path: str, body: Any, namespace: str = "wc/v3") -> Any:
        return self.request("PUT", path, json=body, namespace=namespace).data

    def post(self, path: str, body: Any, namespace: str = "wc/v3", *, idempotent: bool = False) -> Any:
        """POST; ``idempotent`` (absolute batch updates) allows re-sending after a lost answer."""
        return self.request("POST", path, json=body, namespace=namespace, idempotent=idempotent).data

    def delete(self, path: str, params: Mapping[str, Any] | None = None, namespace: str = "wc/v3") -> Any:
        return self.request("DELETE", path, params=params, namespace=namespace).data

    def pages(self, path: str, params: Mapping[str, Any] | None = None, namespace: str = "wc/v3") -> Iterator[Any]:
        """Every item of a collection, ``per_page=100``, following ``Link: rel=next`` (else
        ``X-WP-TotalPages``)."""
        query = {**(params or {}), "per_page": PER_PAGE, "page": 1}
        while True:
            response = self.request("GET", path, params=query, namespace=namespace)
            yield from response.data or []
            total = int(response.headers.get("X-WP-TotalPages") or 0)
            has_next = "next" in response.links or (total and query["page"] < total)
            if not has_next or not response.data:
                return
            query["page"] += 1

    def namespaces(self) -> list[str]:
        """The REST namespaces the site serves (``GET /wp-json/``), sent without credentials:
        since WC 11.1 a key presented outside ``wc/*`` routes is refused with 401."""
        try:
            response = self._send("GET", f"{self.store_url}/wp-json/", {}, None, {}, None)
        except OutboundError as exc:
            raise _outbound_error("GET /wp-json/", exc) from None
        data = self._decode(response, "GET /wp-json/")
        if response.status_code >= 400 or not isinstance(data, dict):
            raise InvalidRequestError(f"GET /wp-json/ answered {response.status_code}", status=response.status_code)
        return [str(n) for n in data.get("namespaces") or []]

    # --- one request, every rule ------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        namespace: str = "wc/v3",
        idempotent: bool | None = None,
    ) -> WooResponse:
        url = f"{self.store_url}/wp-json/{namespace}/{path.lstrip('/')}"
        what = f"{method} /{namespace}/{path.lstrip('/')}"
        resend_after_unknown = method in ("GET", "PUT", "DELETE") if idempotent is None else idempotent
        modes = self._modes()
        mode_index = 0
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            mode = modes[mode_index]
            try:
                response = self._send(method, url, dict(params or {}), json, {}, mode)
            except OutboundError as exc:  # refused by the guard, or timeout, reset, DNS: outcome unknown
                if exc.transient and resend_after_unknown and attempt < self.attempts and waited < MAX_WAIT:
                    waited += self._pause(attempt, None)
                    continue
                raise _outbound_error(what, exc) from None
            status = response.status_code
            data = self._decode(response, what)
            if status == 401 and _code(data).startswith("woocommerce_rest_cannot_") and mode_index + 1 < len(modes):
                # Nothing ran: the request was refused as anonymous. Likely the host stripped the
                # Authorization header, or WordPress does not see TLS: try the next way.
                log.info("%s: %s with %s auth; trying %s", self.store_url, _code(data), mode, modes[mode_index + 1])
                mode_index += 1
                continue
            if status == 501 and method in ("PUT", "DELETE") and not self._override():
                self._remember(self._override_key, "1")
                continue
            if status in RETRY_STATUSES:
                retry_after = _retry_after(response)
                safe = status == 429 or resend_after_unknown
                if safe and attempt < self.attempts and waited + (retry_after or 0) <= MAX_WAIT:
                    waited += self._pause(attempt, retry_after)
                    continue
                raise RetryableError(f"{what}: HTTP {status} {_message(data)}", retry_after=retry_after, status=status)
            if mode_index and status < 400:
                self._remember(self._mode_key, mode)
            if status >= 400:
                raise _error(what, status, data, self.store_url)
            return WooResponse(status, data, response.headers, response.links)

    def _send(
        self, method: str, url: str, params: dict[str, Any], json: Any, headers: dict[str, str], mode: str | None
    ) -> requests.Response:
        auth_pair = None
        verb = method
        if method in ("PUT", "DELETE") and mode is not None and self._override():
            headers = {**headers, "X-HTTP-Method-Override": method}
            verb = "POST"
        if mode == auth.BASIC:
            auth_pair = (self.consumer_key, self.consumer_secret)
        elif mode == auth.QUERY:
            params = {**params, "consumer_key": self.consumer_key, "consumer_secret": self.consumer_secret}
        elif mode == auth.OAUTH:
            # WordPress signs over the URL it believes it serves: http:// when it sees no TLS.
            params = auth.oauth_params(verb, auth.as_http(url), params, self.consumer_key, self.consumer_secret)
        self.calls += 1
        with self.slots.hold():
            return self.http.request(
                verb, url, params=params, json=json, headers=headers, auth=auth_pair, timeout=self.timeout
            )

    def _decode(self, response: requests.Response, what: str) -> Any:
        text = response.text
        kind = response.headers.get("Content-Type", "")
        if "html" in kind or text.lstrip()[:1] == "<":
            if response.status_code in RETRY_STATUSES:
                return {"code": "html", "message": "an HTML error page"}
            raise StoreBlocked(
                f"{what}: {self.store_url} answered HTTP {response.status_code} with an HTML page, not JSON. "
                "A firewall or security plugin (Cloudflare, ModSecurity, Wordfence, Sucuri) is answering for the "
                "store: allow Relais through for /wp-json/wc/, or check that pretty permalinks are on."
            )
        if not text.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise InvalidRequestError(f"{what}: answer is not JSON", status=response.status_code) from None

    def _modes(self) -> tuple[str, ...]:
        modes = auth.ladder(self.store_url)
        known = self._recall(self._mode_key)
        return modes[modes.index(known) :] if known in modes else modes

    def _override(self) -> bool:
        return self._recall(self._override_key) == "1"

    def _recall(self, key: str) -> str | None:
        if self.redis is None:
            return _memory.get(key)
        value = self.redis.get(key)
        return value.decode() if isinstance(value, bytes) else value

    def _remember(self, key: str, value: str) -> None:
        if self.redis is None:
            _memory[key] = value
        else:
            self.redis.set(key, value, ex=7 * 86400)

    def _pause(self, attempt: int, retry_after: float | None) -> float:
        wait = retry_after if retry_after is not None else self.backoff * 2 ** (attempt - 1)
        wait = wait + random.uniform(0, self.backoff / 2)  # nosec B311 # jitter: workers do not retry in step
        self.sleep(wait)
        return wait


_memory: dict[str, str] = {}


def _outbound_error(what: str, exc: OutboundError) -> Exception:
    if exc.transient:
        return RetryableError(f"{what}: {exc.reason}")
    return StoreUnreachable(exc.reason)


_CODE = re.compile(r"^[a-z0-9_]{1,80}$")


def _code(data: Any) -> str:
    code = str(data.get("code") or "") if isinstance(data, dict) else ""
    return code if _CODE.match(code) else ""


def _message(data: Any) -> str:
    """WooCommerce's short error message (``{"code", "message"}``), never anything else of the body."""
    text = str(data.get("message") or "") if isinstance(data, dict) else ""
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:199] + "…"


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


AUTH_HINTS = {
    "woocommerce_rest_cannot_view": "the key's user may not read this (it needs manage_woocommerce), or the host "
    "drops credentials on every route",
    "woocommerce_rest_authentication_error": "the consumer key or secret is wrong, revoked, or lacks write permission",
}


def _error(what: str, status: int, data: Any, store_url: str) -> Exception:
    code, message = _code(data), _message(data)
    text = f"{what}: HTTP {status} {code}: {message}".rstrip(": ")
    if status in (401, 403):
        hint = AUTH_HINTS.get(code) or AUTH_HINTS["woocommerce_rest_cannot_view"]
        return AuthError(f"{text} ({store_url}: {hint})")
    if status == 404:
        return NotFoundError(text)
    if status == 413:
        return BatchTooLarge(text, status=status, details=data)
    return InvalidRequestError(text, status=status, details=data)
