"""Shopify's token endpoint, ``POST {shop}/admin/oauth/access_token``, in its three uses.

- code exchange (authorization-code grant, after ``/shopify/callback``);
- token exchange (embedded page: App Bridge session token → offline token);
- refresh (expiring offline tokens: 3,600 s, and the refresh token rotates on every use).

Every call goes through ``settings.shopify_admin_url`` so a local fake stands in for Shopify.
Offline tokens are always asked for as the expiring kind (``expiring: "1"``): public apps created
after 2026-04-01 must use them, and all by 2027-01-01 (reference/shopify.md §3.4).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import requests

from integrations.errors import AuthError, InvalidRequestError, RetryableError

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105  # nosec B105 # a URN
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105  # nosec B105 # a URN
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105  # nosec B105 # a URN


@dataclass(frozen=True)
class TokenSet:
    """An offline access token and, when it expires, its refresh token; times are epoch seconds."""

    access_token: str
    scope: str = ""
    expires_at: float | None = None
    refresh_token: str = ""
    refresh_token_expires_at: float | None = None

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any], now: float) -> TokenSet:
        """Read Shopify's answer; ``expires_in`` values are seconds from ``now``."""
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise InvalidRequestError("Shopify's token answer has no access_token")

        def at(key: str) -> float | None:
            value = answer.get(key)
            return now + float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(
            access_token=token,
            scope=str(answer.get("scope") or ""),
            expires_at=at("expires_in"),
            refresh_token=str(answer.get("refresh_token") or ""),
            refresh_token_expires_at=at("refresh_token_expires_in"),
        )

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any]) -> TokenSet:
        return cls(
            access_token=str(credentials.get("access_token") or ""),
            scope=str(credentials.get("scope") or ""),
            expires_at=credentials.get("expires_at"),
            refresh_token=str(credentials.get("refresh_token") or ""),
            refresh_token_expires_at=credentials.get("refresh_token_expires_at"),
        )

    def as_credentials(self) -> dict[str, Any]:
        """What is sealed into the shop's credentials (the pair and its expiries, together)."""
        return asdict(self)

    def expires_within(self, seconds: float, now: float) -> bool:
        return self.expires_at is not None and self.expires_at - now <= seconds


class TokenEndpoint:
    """The token endpoint of one app (client id and secret) for any shop."""

    def __init__(self, settings: Any, http: requests.Session, timeout: float = 10.0) -> None:
        self._settings = settings
        self._http = http
        self._timeout = timeout

    def url(self, shop: str) -> str:
        return self._settings.shopify_admin_url.format(shop=shop).rstrip("/") + "/admin/oauth/access_token"

    def exchange_code(self, shop: str, code: str) -> TokenSet:
        """Authorization-code grant: the callback's ``code`` → an expiring offline token."""
        return self._post(shop, {"code": code, "expiring": "1"}, "code exchange")

    def exchange_session_token(self, shop: str, session_token: str) -> TokenSet:
        """Token exchange: a verified App Bridge session token → an expiring offline token."""
        body = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": session_token,
            "subject_token_type": ID_TOKEN,
            "requested_token_type": OFFLINE_TOKEN,
            "expiring": "1",
        }
        return self._post(shop, body, "token exchange")

    def refresh(self, shop: str, refresh_token: str) -> TokenSet:
        """A new access token and a new refresh token (the old refresh token is spent)."""
        return self._post(shop, {"grant_type": "refresh_token", "refresh_token": refresh_token}, "token refresh")

    def _post(self, shop: str, fields: Mapping[str, str], what: str) -> TokenSet:
        secret = self._settings.shopify_api_secret
        body = {"client_id": self._settings.shopify_api_key, "client_secret": secret, **fields}
        started = time.time()
        try:
            response = self._http.post(
                self.url(shop), json=body, headers={"Accept": "application/json"}, timeout=self._timeout
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise RetryableError(f"Shopify {shop} {what}: {type(exc).__name__}") from exc
        status = response.status_code
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if status == 429 or status >= 500:
            raise RetryableError(f"Shopify {shop} {what} answered HTTP {status}", status=status)
        if status >= 400:
            # invalid_subject_token (session token refused), invalid_grant (code or refresh token
            # spent or expired), invalid_client: only a new install or session can fix these.
            error = str(answer.get("error") or f"HTTP {status}")
            detail = str(answer.get("error_description") or "")
            message = f"Shopify {shop} refused the {what}: {error}" + (f" ({detail})" if detail else "")
            if status in (400, 401, 403):
                raise AuthError(message)
            raise InvalidRequestError(message, status=status)
        return TokenSet.from_answer(answer, started)
