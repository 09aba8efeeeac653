"""The fake Shopify's install side: the authorize page, the token endpoint, webhook subscriptions.

Behaves as reference/shopify.md §3-4 documents it:
- ``GET /{shop}/admin/oauth/authorize`` plays the merchant who approves: 302 to ``redirect_uri``
  with ``code``, ``host``, ``shop``, ``state``, ``timestamp`` and the hex ``hmac`` Shopify signs
  them with (JS canonical form; ``host`` is base64 and may end in ``=``).
- ``POST /{shop}/admin/oauth/access_token`` (JSON) answers a code exchange (single-use code), a
  token exchange (the session token must be an HS256 JWT for this app and shop, else 400
  ``invalid_subject_token``) and a refresh (the refresh token is spent on use and rotates).
  ``expiring: "1"`` gives ``expires_in`` (3,600 s unless a test shortens it) and a refresh token.
- ``webhookSubscriptions`` / ``webhookSubscriptionCreate(uri)`` / ``webhookSubscriptionDelete(id)`` keep
  the shop's (shop-level) subscriptions;
  a test may make some topics refused as Shopify does for protected customer data.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from werkzeug.wrappers import Request, Response

from integrations.shopify.auth import query_hmac
from tests.fakes.shopify_fulfilment import _page

PROTECTED_DATA_ERROR = "This app is not approved to subscribe to webhook topics containing protected customer data."


@dataclass
class _Token:
    shop: str
    expires_at: float | None


@dataclass
class FakeOAuth:
    """Tokens and subscriptions of the fake Shopify, for every shop it serves."""

    client_id: str = "test-api-key"
    client_secret: str = "test-shopify-secret"
    lifetime: float = 3600.0
    refresh_lifetime: float = 90 * 86400.0
    refused_topics: set[str] = field(default_factory=set)
    codes: dict[str, str] = field(default_factory=dict)  # code → shop
    access: dict[str, _Token] = field(default_factory=dict)
    refresh: dict[str, _Token] = field(default_factory=dict)
    grants: list[tuple[str, str]] = field(default_factory=list)  # (shop, kind) per token issued
    subscriptions: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # shop → subscriptions
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Any = field(default_factory=lambda: itertools.count(7_000_000_001))

    # --- test hooks -------------------------------------------------------------------------
    def accepts(self, token: str | None) -> bool:
        found = self.access.get(token or "")
        return found is not None and (found.expires_at is None or found.expires_at > time.time())

    def expire(self, token: str) -> None:
        """The access token's hour is up (its refresh token still works)."""
        with self._lock:
            self.access[token].expires_at = time.time() - 1

    def issue_code(self, shop: str) -> str:
        with self._lock:
            code = secrets.token_hex(16)
            self.codes[code] = shop
            return code

    def topics(self, shop: str) -> list[str]:
        return [s["topic"] for s in self.subscriptions.get(shop, [])]

    # --- HTTP -------------------------------------------------------------------------------
    def handle(self, request: Request, shop: str) -> Response:
        if request.path.endswith("/admin/oauth/authorize") and request.method == "GET":
            return self._authorize(request, shop)
        if request.path.endswith("/admin/oauth/access_token") and request.method == "POST":
            return self._token(request, shop)
        return Response("Not Found", status=404)

    def _authorize(self, request: Request, shop: str) -> Response:
        args = request.args
        if args.get("client_id") != self.client_id or not args.get("redirect_uri"):
            return Response("Oauth error invalid_request: The redirect_uri is missing or not whitelisted", 400)
        handle = shop.split(".", 1)[0]
        params = {
            "code": self.issue_code(shop),
            "host": base64.b64encode(f"admin.shopify.com/store/{handle}".encode()).decode(),
            "shop": shop,
            "state": args.get("state", ""),
            "timestamp": str(int(time.time())),
        }
        params["hmac"] = query_hmac(self.client_secret, params)
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{urlencode(params)}"})

    def _token(self, request: Request, shop: str) -> Response:
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            return _json({"error": "invalid_request"}, 400)
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return _json({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        grant = body.get("grant_type")
        with self._lock:
            if grant == "refresh_token":
                spent = self.refresh.pop(str(body.get("refresh_token")), None)
                if spent is None or spent.shop != shop or (spent.expires_at or 0) < time.time():
                    return _json({"error": "invalid_grant", "error_description": "refresh token is invalid"}, 400)
                return _json(self._issue(shop, "refresh", expiring=True), 200)
            if grant == "urn:ietf:params:oauth:grant-type:token-exchange":
                if not self._session_token_ok(str(body.get("subject_token") or ""), shop):
                    return _json({"error": "invalid_subject_token"}, 400)
                return _json(self._issue(shop, "token_exchange", expiring=body.get("expiring") == "1"), 200)
            if self.codes.pop(str(body.get("code")), None) != shop:
                return _json({"error": "invalid_request", "error_description": "authorization code was not found"}, 400)
            return _json(self._issue(shop, "code", expiring=body.get("expiring") == "1"), 200)

    def _session_token_ok(self, token: str, shop: str) -> bool:
        try:
            claims = jwt.decode(token, self.client_secret, algorithms=["HS256"], audience=self.client_id, leeway=10)
        except jwt.PyJWTError:
            return False
        return claims.get("dest") == f"https://{shop}"

    def _issue(self, shop: str, kind: str, *, expiring: bool) -> dict[str, Any]:
        token = "shpat_" + secrets.token_hex(16)
        answer: dict[str, Any] = {"access_token": token, "scope": "read_orders,write_inventory"}
        now = time.time()
        if expiring:
            refresh = "shprt_" + secrets.token_hex(16)
            self.refresh[refresh] = _Token(shop, now + self.refresh_lifetime)
            answer.update(
                expires_in=int(self.lifetime),
                refresh_token=refresh,
                refresh_token_expires_in=int(self.refresh_lifetime),
            )
        self.access[token] = _Token(shop, now + self.lifetime if expiring else None)
        self.grants.append((shop, kind))
        return answer

    # --- GraphQL root fields ----------------------------------------------------------------
    def root(self, shop: str) -> dict[str, Any]:
        return {
            "webhookSubscriptions": lambda _info, **args: _page(list(self.subscriptions.get(shop, [])), **args),
            "webhookSubscriptionCreate": lambda _info, topic, webhookSubscription: self._create(
                shop, topic, webhookSubscription
            ),
            "webhookSubscriptionDelete": lambda _info, id: self._delete(shop, id),
        }

    def _delete(self, shop: str, subscription_id: str) -> dict[str, Any]:
        mine = self.subscriptions.get(shop, [])
        if not any(s["id"] == subscription_id for s in mine):
            message = "Webhook subscription does not exist"
            return {"deletedWebhookSubscriptionId": None, "userErrors": [{"field": ["id"], "message": message}]}
        self.subscriptions[shop] = [s for s in mine if s["id"] != subscription_id]
        return {"deletedWebhookSubscriptionId": subscription_id, "userErrors": []}

    def _create(self, shop: str, topic: str, given: dict[str, Any]) -> dict[str, Any]:
        if topic in self.refused_topics:
            return {"webhookSubscription": None, "userErrors": [{"field": ["topic"], "message": PROTECTED_DATA_ERROR}]}
        uri = given.get("uri") or ""
        if not uri.startswith(("https://", "http://", "pubsub://", "arn:")):
            return {"webhookSubscription": None, "userErrors": [{"field": ["uri"], "message": "Address is invalid"}]}
        mine = self.subscriptions.setdefault(shop, [])
        if any(s["topic"] == topic and s["uri"] == uri for s in mine):
            message = "Address for this topic has already been taken"
            return {"webhookSubscription": None, "userErrors": [{"field": ["uri"], "message": message}]}
        created = {"id": f"gid://shopify/WebhookSubscription/{next(self._ids)}", "topic": topic, "uri": uri}
        mine.append(created)
        return {"webhookSubscription": created, "userErrors": []}


def _json(payload: Any, status: int) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")
