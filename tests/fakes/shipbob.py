"""A fake ShipBob Developer API (2026-07), a WSGI app served on 127.0.0.1 for tests and the bench.

It behaves as the documented API does where Relais depends on it: bearer PAT and the
``shipbob_channel_id`` header, required fields answered with 400 and a field → messages map,
``reference_id`` unique per account (422 "Duplicate reference ID"), ``GET /order`` filters and
page numbers (a plain JSON array), link-paged ``/product`` and ``/inventory-level/locations``,
cancels answered per shipment (a shipped parcel cannot be cancelled), the camelCase
``shipment:batchUpdateTrackingUpload`` reply, and the 150-requests sliding window answering 429
with ``x-retry-after`` / ``x-remaining-calls`` (scalable for tests). Controls: ``ship``,
``deliver``, injected failures and late answers, and ``send_webhook`` (Standard Webhooks signed).
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.fakes.shipbob_state import ShipBobState

Answer = tuple[int, Any, dict[str, str]]
VERSIONS = ("2026-07", "2026-01", "2025-07")


def make_secret() -> str:
    """A webhook secret as ShipBob issues them: ``whsec_`` + base64 key bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class _RawHeaders(WSGIRequestHandler):
    """Werkzeug's dev server drops headers with underscores; ShipBob's ``shipbob_channel_id`` has them."""

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ["fake.raw_headers"] = {key.lower(): value for key, value in self.headers.items()}
        return environ

    def log_request(self, *args: Any) -> None:  # quiet
        pass


class Server:
    """A WSGI app on 127.0.0.1, port chosen by the OS, in a daemon thread."""

    def __init__(self, app: Any):
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_RawHeaders)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Rule:
    """An injected answer for the next ``times`` matching requests."""

    times: int
    status: int = 0  # 0: answer normally, but only after ``delay`` (an answer lost to a timeout)
    method: str | None = None
    path: str | None = None  # a regex searched in the path after the version
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or bool(re.search(self.path, path))
        )


class FakeShipBob:
    """The fake's HTTP face; its data lives in ``self.state`` (orders, shipments, products, stock)."""

    def __init__(
        self,
        *,
        token: str = "pat-test",  # noqa: S107 - the fake account's token
        channel_id: int = 4242,
        rate_limit: int = 150,
        rate_window: float = 60.0,
    ):
        self.token = token
        self.channel_id = channel_id
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.state = ShipBobState()
        self.counters: Counter[str] = Counter()
        self.max_in_window = 0  # the most requests ever admitted inside one window
        self._window: deque[float] = deque()
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._server: Server | None = None
        self.url = ""
        self._routes = [
            ("POST", re.compile(r"/order"), self._create_order),
            ("GET", re.compile(r"/order"), self._list_orders),
            ("GET", re.compile(r"/order/(\d+)"), self._get_order),
            ("POST", re.compile(r"/order/(\d+):cancel"), self._cancel),
            ("POST", re.compile(r"/shipment:batchUpdateTrackingUpload"), self._ack),
            ("PUT", re.compile(r"/shipment/(\d+):updateAddress"), self._update_address),
            ("GET", re.compile(r"/product"), self._products),
            ("GET", re.compile(r"/inventory-level/locations"), self._levels),
            ("GET", re.compile(r"/location"), self._locations),
        ]

    # -- life and controls -----------------------------------------------------------------

    def start(self) -> FakeShipBob:
        self._server = Server(self)
        self.url = self._server.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def fail(
        self,
        status: int,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        body: Any = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (500, 429, 422, …)."""
        headers = {"x-retry-after": str(retry_after), "x-remaining-calls": "0"} if retry_after is not None else {}
        if status == 429 and body is None:
            body = {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {retry_after or 1} seconds."}
        self._rules.append(
            Rule(times, status, method, path, body if body is not None else {"message": "fault"}, headers)
        )

    def answer_late(
        self, seconds: float, times: int = 1, *, method: str | None = None, path: str | None = None
    ) -> None:
        """Do the work of the next matching requests, then wait ``seconds`` before answering."""
        self._rules.append(Rule(times, 0, method, path, delay=seconds))

    def ship(self, order_id: int, **options: Any) -> list[dict[str, Any]]:
        """Put the order into parcels with tracking (see ``ShipBobState.ship``)."""
        return self.state.ship(order_id, **options)

    def webhook_delivery(
        self, topic: str, shipment_id: int, secret: str, *, at: datetime | None = None, webhook_id: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """Headers and raw body of one delivery, signed as ShipBob signs (Standard Webhooks)."""
        at = at or datetime.now(UTC)
        payload = self.state.shipment_view(shipment_id)
        payload["event_time"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        body = json.dumps(payload)
        msg_id = webhook_id or "msg_" + secrets.token_hex(12)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(math.floor(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body),
            "x-webhook-topic": topic,
            "content-type": "application/json",
        }
        return headers, body.encode()

    def send_webhook(self, topic: str, url: str, shipment_id: int, secret: str, **options: Any) -> requests.Response:
        """POST one signed delivery to ``url`` (a Relais endpoint, or a test's receiver)."""
        headers, body = self.webhook_delivery(topic, shipment_id, secret, **options)
        with requests.Session() as http:
            return http.post(url, data=body, headers=headers, timeout=10)

    # -- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        status, body, headers = self._answer(request, environ.get("fake.raw_headers", {}))
        if isinstance(body, str):
            response = Response(body, status=status, content_type="text/plain")
        else:
            response = Response(json.dumps(body), status=status, content_type="application/json")
        response.headers.update(headers)
        return response(environ, start_response)

    def _answer(self, request: Request, raw: dict[str, str]) -> Answer:
        with self._lock:
            self.counters["requests"] += 1
        version, _, rest = request.path.lstrip("/").partition("/")
        path = "/" + rest
        if version not in VERSIONS:
            return 404, {"message": "unknown API version"}, {}
        self.counters[f"version {version}"] += 1
        if raw.get("authorization") != f"Bearer {self.token}":
            self.counters["401"] += 1
            return 401, {"message": "Authorization has been denied for this request."}, {}
        limited = self._admit()
        if limited:
            return limited
        rule = self._take_rule(request.method, path)
        if rule is not None and rule.status:
            self.counters[str(rule.status)] += 1
            return rule.status, rule.body, rule.headers
        answer = self._route(request, raw, path)
        if rule is not None:
            time.sleep(rule.delay)
        status, body, headers = answer
        return status, body, {"x-remaining-calls": str(max(0, self.rate_limit - len(self._window))), **headers}

    def _admit(self) -> Answer | None:
        """The sliding window, counted on arrival; refused requests are not counted."""
        now = time.monotonic()
        with self._lock:
            while self._window and self._window[0] <= now - self.rate_window:
                self._window.popleft()
            if len(self._window) >= self.rate_limit:
                wait = max(1, math.ceil(self._window[0] + self.rate_window - now))
                self.counters["429"] += 1
                body = {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {wait} seconds."}
                return 429, body, {"x-retry-after": str(wait), "x-remaining-calls": "0"}
            self._window.append(now)
            self.max_in_window = max(self.max_in_window, len(self._window))
        return None

    def _take_rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.times > 0 and rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    def _route(self, request: Request, raw: dict[str, str], path: str) -> Answer:
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and method == request.method:
                return handler(request, raw, *match.groups())
        return 404, {"message": f"no route {request.method} {path}"}, {}

    def _channel_refused(self, raw: dict[str, str]) -> Answer | None:
        channel = raw.get("shipbob_channel_id")
        if not channel:
            return 400, {"shipbob_channel_id": ["The shipbob_channel_id header is required."]}, {}
        if channel != str(self.channel_id):
            return 403, {"message": "The channel has no write scope for this user."}, {}
        return None

    # -- routes ----------------------------------------------------------------------------

    def _create_order(self, request: Request, raw: dict[str, str]) -> Answer:
        refused = self._channel_refused(raw)
        if refused:
            return refused
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return 400, {"": ["A non-empty request body is required."]}, {}
        errors = self.state.validate_order(body)
        if errors:
            return 400, errors, {}
        order = self.state.create_order(body, int(raw["shipbob_channel_id"]))
        if order is None:
            message = "Duplicate reference ID: you have already created a product or order with the same reference_id"
            return 422, {"reference_id": [message]}, {}
        self.counters["orders_created"] += 1
        return 201, order, {}

    def _list_orders(self, request: Request, raw: dict[str, str]) -> Answer:
        args = request.args
        limit = min(int(args.get("Limit", 50)), 250)
        page = max(int(args.get("Page", 1)), 1)
        orders = self.state.find_orders(
            reference_ids=[r for r in args.get("ReferenceIds", "").split(",") if r],
            ids=[int(i) for i in args.get("IDs", "").split(",") if i],
            has_tracking=args.get("HasTracking"),
            tracking_uploaded=args.get("IsTrackingUploaded"),
        )
        return 200, orders[(page - 1) * limit : page * limit], {}

    def _get_order(self, request: Request, raw: dict[str, str], order_id: str) -> Answer:
        order = self.state.order(int(order_id))
        return (200, order, {}) if order else (404, {"message": "Order not found"}, {})

    def _cancel(self, request: Request, raw: dict[str, str], order_id: str) -> Answer:
        refused = self._channel_refused(raw)
        if refused:
            return refused
        result = self.state.cancel(int(order_id))
        return (200, result, {}) if result else (404, {"message": "Order not found"}, {})

    def _ack(self, request: Request, raw: dict[str, str]) -> Answer:
        body = request.get_json(silent=True) or {}
        ids = body.get("shipment_ids")
        if not isinstance(ids, list) or not ids:
            return 400, "shipment_ids must list at least one shipment id", {}
        return 200, self.state.mark_uploaded(ids, bool(body.get("is_tracking_uploaded"))), {}

    def _update_address(self, request: Request, raw: dict[str, str], shipment_id: str) -> Answer:
        """``{id, is_success, error}``: 400 without ``street_address1``/``city``; a 200 refusal
        (``CONFLICT``) once the shipment has a label or is cancelled."""
        body = request.get_json(silent=True) or {}
        missing = [key for key in ("street_address1", "city") if not body.get(key)]
        if missing:
            error = {"code": "VALIDATION_ERROR", "message": f"{', '.join(missing)} is required"}
            return 400, {"id": int(shipment_id), "is_success": False, "error": error}, {}
        answer = self.state.update_address(int(shipment_id), body)
        if answer is None:
            return 404, {"id": int(shipment_id), "is_success": False, "error": {"code": "NOT_FOUND"}}, {}
        if answer["is_success"]:
            self.counters["address_updates"] += 1
        return 200, answer, {}

    def _products(self, request: Request, raw: dict[str, str]) -> Answer:
        return 200, self._page(request, self.state.product_views()), {}

    def _levels(self, request: Request, raw: dict[str, str]) -> Answer:
        wanted = {int(i) for i in request.args.get("InventoryIds", "").split(",") if i}
        return 200, self._page(request, self.state.level_views(wanted or None)), {}

    def _locations(self, request: Request, raw: dict[str, str]) -> Answer:
        """``GET /location``: a bare list (not paged), as ShipBob's Locations API answers."""
        return 200, self.state.location_views(), {}

    def _page(self, request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        """``{items, first, next, prev, last}`` with relative links carrying an opaque cursor."""
        size = max(1, min(int(request.args.get("PageSize", 50)), self.state.max_page_size))
        start = int(request.args.get("Cursor", 0))

        def link(offset: int) -> str:
            query = {k: v for k, v in request.args.items() if k != "Cursor"} | {"Cursor": str(offset)}
            return request.path + "?" + "&".join(f"{k}={v}" for k, v in query.items())

        last = max(0, (len(items) - 1) // size * size)
        return {
            "items": items[start : start + size],
            "first": link(0),
            "next": link(start + size) if start + size < len(items) else None,
            "prev": link(max(0, start - size)) if start else None,
            "last": link(last),
        }


def start_fake(**options: Any) -> FakeShipBob:
    """A running fake ShipBob; call ``stop()`` when done."""
    return FakeShipBob(**options).start()
