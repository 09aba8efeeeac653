"""A fake WooCommerce store on a real port (HTTP, or HTTPS with ``tests/fakes/tls.py``).

It behaves as the reference documents (WooCommerce REST API v3 and its source):
- auth as ``class-wc-rest-authentication.php``: over TLS query-string keys then Basic (an
  unknown key is anonymous → ``401 woocommerce_rest_cannot_view``; a wrong secret →
  ``woocommerce_rest_authentication_error``); without TLS only OAuth 1.0a (signature over the
  ``http://`` URL, ±15 min timestamps, nonces used once). ``strip_authorization`` drops the
  header as Apache CGI does; ``behind_proxy`` serves TLS while WordPress believes it is on HTTP;
- collections page with ``X-WP-Total``, ``X-WP-TotalPages`` and ``Link``; ``per_page`` over 100
  is ``400 rest_invalid_param``;
- batches over ``batch_limit`` items are ``413``; a refused item is an ``error`` inside the 200;
- webhooks CRUD (create pings the URL and ignores the answer; delete needs ``force``), and
  signed deliveries as ``WC_Webhook::deliver`` sends them: ``wp_json_encode`` escapes, base64
  HMAC-SHA256, failure counting and auto-disable after the 7th consecutive failure;
- ``/wp-json/`` lists namespaces, with the Shipment Tracking extension or AST when installed;
- ``/wc-auth/v1/authorize`` as ``class-wc-auth.php``, the merchant approving at once: the keys
  are POSTed to the ``https`` callback and deleted unless it answers exactly 200.
What it does not do: WordPress' ban on private IPs and on ports other than 80/443/8080 for
deliveries and callbacks (everything here is on 127.0.0.1 and random ports).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from sandbox.woocommerce import routes
from sandbox.woocommerce.auth import authenticate
from sandbox.woocommerce.state import Key, WooState, make_key

VERSION = "10.3.0"
NAMESPACES = ["wp/v2", "wc/store/v1", "wc/v1", "wc/v2", "wc/v3", "wc-admin"]
TRACKING_NAMESPACES = {"shipment_tracking": "wc-shipment-tracking/v3", "ast": "wc-ast/v3"}


def wp_json_encode(payload: Any) -> bytes:
    """PHP ``json_encode`` with default flags: ``\\/`` for ``/``, ``\\uXXXX`` for non-ASCII."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def wc_signature(secret: str, body: bytes) -> str:
    key = html.unescape(secret).encode()  # wp_specialchars_decode($secret, ENT_QUOTES)
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


@dataclass
class Fault:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    html: bool = False
    delay: float = 0.0


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers or {}, content_type="application/json")


def wc_error(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return json_response({"code": code, "message": message, "data": {"status": status}}, status, headers)


class FakeWooCommerce:
    """One store. ``start(certificate)`` serves it; ``deliver()`` sends queued webhooks."""

    def __init__(
        self,
        *,
        tracking: str | None = None,
        strip_authorization: bool = False,
        behind_proxy: bool = False,
        batch_limit: int = 100,
        ca_bundle: str | bool = True,
    ) -> None:
        self.tracking = tracking  # None | "shipment_tracking" | "ast"
        self.strip_authorization = strip_authorization
        self.behind_proxy = behind_proxy
        self.batch_limit = batch_limit
        self.ca_bundle = ca_bundle  # what deliveries and callbacks verify the receiver's TLS with
        self.state = WooState("http://127.0.0.1")
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, str]] = []  # (method, path, auth mode) per REST call
        self.deliveries: list[tuple[str, int]] = []  # (topic, HTTP status) per delivery sent
        self.pings: list[int] = []
        self.callbacks: list[int] = []  # the status our callback answered, per authorize
        self.deny = False  # the merchant clicks "Deny" on the authorize screen
        self.refuse: dict[str, tuple[str, str]] = {}  # sku → (code, message) for batch updates
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.tls = False
        self._server: Any = None

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, certificate: Any = None) -> FakeWooCommerce:
        context = certificate.server_context() if certificate else None
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True, ssl_context=context)
        self.tls = context is not None
        scheme = "https" if self.tls else "http"
        self.state.store_url = f"{scheme}://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return self.state.store_url

    @property
    def key(self) -> Key:
        return self.state.key

    @property
    def is_ssl(self) -> bool:
        return self.tls and not self.behind_proxy

    def fail_next(self, status: int, *, count: int = 1, **kwargs: Any) -> None:
        with self.lock:
            self.faults.extend(Fault(status, **kwargs) for _ in range(count))

    def calls(self, method: str, prefix: str) -> list[str]:
        with self.lock:
            return [path for m, path, _ in self.log if m == method and path.startswith(prefix)]

    # --- webhook deliveries -----------------------------------------------------------------------
    def deliver(self, drop: bool = False) -> list[int]:
        """Send every queued delivery (``drop``: lose them, as a failed WP-Cron run does)."""
        with self.lock:
            pending, self.state.pending = self.state.pending, []
        statuses = []
        for hook_id, topic, resource_id in pending:
            if drop:
                continue
            statuses.append(self._deliver_one(hook_id, topic, resource_id))
        return statuses

    def _deliver_one(self, hook_id: int, topic: str, resource_id: int) -> int:
        with self.lock:
            hook = self.state.webhooks.get(hook_id)
            if hook is None or hook.status != "active":
                return 0
            body = wp_json_encode(self.state.payload(topic, resource_id))
            resource, _, event = topic.partition(".")
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"WooCommerce/{VERSION} Hookshot (WordPress/6.8.3)",
                "X-WC-Webhook-Source": self.url + "/",
                "X-WC-Webhook-Topic": topic,
                "X-WC-Webhook-Resource": resource,
                "X-WC-Webhook-Event": event,
                "X-WC-Webhook-Signature": wc_signature(hook.secret, body),
                "X-WC-Webhook-ID": str(hook.id),
                # wp_hash(webhook id . second): NOT unique per delivery.
                "X-WC-Webhook-Delivery-ID": hashlib.md5(f"{hook.id}{int(time.time())}".encode()).hexdigest(),  # noqa: S324  # nosec B324 # an id
            }
            url = hook.delivery_url
        try:
            status = requests.post(
                url, data=body, headers=headers, timeout=60, allow_redirects=False, verify=self.ca_bundle
            ).status_code
        except requests.RequestException:
            status = 0
        with self.lock:
            self.deliveries.append((topic, status))
            if 200 <= status < 303:
                hook.failure_count = 0
            elif hook.failure_count > 5:  # woocommerce_max_webhook_delivery_failures, checked first
                hook.status = "disabled"
            else:
                hook.failure_count += 1
        return status

    def ping(self, hook_id: int, url: str) -> None:
        with contextlib.suppress(requests.RequestException):  # the REST create ignores the ping's result
            requests.post(url, data=f"webhook_id={hook_id}", timeout=5, allow_redirects=False, verify=self.ca_bundle)
        self.pings.append(hook_id)

    # --- HTTP ----------------------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            response = self._handle(request)
        finally:
            with self.lock:
                self.in_flight -= 1
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/wc-auth/v1/authorize"):
            return routes.authorize(self, request)
        if path.rstrip("/") == "/wp-json":
            if request.authorization or request.args.get("consumer_key"):
                return wc_error(
                    "woocommerce_rest_authentication_error",
                    "The provided API key cannot be used to access this endpoint.",
                    401,
                )
            namespaces = NAMESPACES + ([TRACKING_NAMESPACES[self.tracking]] if self.tracking else [])
            return json_response({"name": "Fake store", "url": self.url, "namespaces": namespaces})
        if not path.startswith("/wp-json/"):
            return Response("<html><body>Not found</body></html>", status=404, content_type="text/html")
        route = path[len("/wp-json/") :]
        method = request.headers.get("X-HTTP-Method-Override", request.method).upper()
        with self.lock:
            fault = self.faults.pop(0) if self.faults else None
            if fault:
                self.log.append((method, "/" + route, "fault"))
        if fault:
            time.sleep(fault.delay)
            if fault.html:
                page = "<!DOCTYPE html><html><title>Attention Required! | Cloudflare</title></html>"
                return Response(page, status=fault.status, headers=fault.headers, content_type="text/html")
            body = fault.body or {"code": "fault", "message": f"fault {fault.status}", "data": {"status": fault.status}}
            return json_response(body, fault.status, fault.headers)
        namespace = next((ns for ns in (*TRACKING_NAMESPACES.values(), "wc/v3") if route.startswith(ns + "/")), None)
        if namespace is None or (namespace != "wc/v3" and TRACKING_NAMESPACES.get(self.tracking or "") != namespace):
            return wc_error("rest_no_route", "No route was found matching the URL and request method.", 404)
        key, mode, refusal = authenticate(self, request, method)
        if refusal is not None:
            return refusal
        with self.lock:
            self.log.append((method, "/" + route, mode))
        if key is None:
            verb = {"GET": "list resources", "POST": "create resources"}.get(method, "edit resources")
            code = {"GET": "woocommerce_rest_cannot_view", "POST": "woocommerce_rest_cannot_create"}.get(
                method, "woocommerce_rest_cannot_edit"
            )
            return wc_error(code, f"Sorry, you cannot {verb}.", 401)
        with self.lock:
            return routes.dispatch(self, request, method, namespace, route[len(namespace) + 1 :], key)

    # --- helpers for routes ---------------------------------------------------------------------
    def new_key(self, permissions: str) -> Key:
        with self.lock:
            key = make_key(self.state.next_id(), permissions)
            self.state.keys.append(key)
            return key

    def paged(self, request: Request, items: list[Any]) -> Response:
        try:
            per_page = int(request.args.get("per_page", 10))
            page = int(request.args.get("page", 1))
        except ValueError:
            return wc_error("rest_invalid_param", "Invalid parameter(s): per_page", 400)
        if not 1 <= per_page <= 100:
            return wc_error("rest_invalid_param", "Invalid parameter(s): per_page", 400)
        total_pages = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {"X-WP-Total": str(len(items)), "X-WP-TotalPages": str(total_pages)}
        base = f"{self.url}{request.path}"
        query = {k: v for k, v in request.args.items() if not k.startswith("oauth_") and not k.startswith("consumer_")}
        links = []
        if page > 1:
            links.append(f'<{base}?{urlencode({**query, "page": page - 1})}>; rel="prev"')
        if page < total_pages:
            links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return json_response(chunk, 200, headers)


def fields_filter(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    wanted = [f for f in re.split(r"\s*,\s*", request.args.get("_fields", "")) if f]
    return {k: v for k, v in item.items() if k in wanted} if wanted else item
