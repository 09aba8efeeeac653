"""Who is looking at the settings page, on every request: a merchant proven by an App Bridge
session token (embedded in Shopify's admin), or by a signed, expiring link (outside the admin:
the demo, WooCommerce stores through their connect flow).

No cookie is involved: Shopify's admin embeds the page in an iframe where third-party cookies do
not work, so the proof travels with each request (``Authorization: Bearer``, or ``?id_token=`` on
the first document load, or ``?t=`` for a link). Forms also carry a CSRF token bound to the shop
and to the admin session (``sid``) or the link, so a token lifted from one cannot post for another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import abort, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from config import Settings
from integrations.shopify.auth import SessionToken, SessionTokenError, verify_session_token
from store.models import Shop
from web import runtime

LINK_LIFETIME = 24 * 3600  # seconds a settings link works (a WooCommerce connect flow may ask for less)
_LINK_SALT = "relais-settings-link"


@dataclass(frozen=True)
class Merchant:
    """The authenticated caller. ``shop_id`` is None for a Shopify shop not installed yet."""

    shop_domain: str
    platform: str
    shop_id: int | None
    embedded: bool
    session_key: str  # the admin session id (sid) or the link's nonce: what CSRF tokens bind to
    actor: str  # who the audit log names
    link: str = ""  # the ?t= value, for URLs built in the page (link mode only)
    session_token: SessionToken | None = None
    raw_session_token: str = ""  # for the token exchange of a first visit

    def url_params(self) -> dict[str, str]:
        """Query parameters every URL of the page carries (the link; the embedded page sends the
        session token in a header instead)."""
        return {"t": self.link} if self.link else {"shop": self.shop_domain}

    def url(self, path: str) -> str:
        return f"{path}?{urlencode(self.url_params())}"


def signed_link(settings: Settings, shop_id: int, lifetime: int = LINK_LIFETIME) -> str:
    """A URL of the settings page that authenticates ``shop_id`` for ``lifetime`` seconds."""
    payload = {"s": shop_id, "n": secrets.token_hex(8), "e": int(time.time()) + lifetime}
    token = URLSafeSerializer(settings.secret_key, salt=_LINK_SALT).dumps(payload)
    return f"{settings.public_url.rstrip('/')}/app?t={token}"


def _read_link(settings: Settings, token: str) -> tuple[int, str]:
    try:
        payload = URLSafeSerializer(settings.secret_key, salt=_LINK_SALT).loads(token)
    except BadSignature:
        abort(401, "this link is not valid")
    if not isinstance(payload, dict) or int(payload.get("e", 0)) < time.time():
        abort(401, "this link has expired; ask for a new one")
    return int(payload["s"]), str(payload["n"])


def _session_token_value() -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.args.get("id_token", "")


class SessionRejected(HTTPException):
    """401 for a bad session token; App Bridge retries a fetch that carries this header."""

    code = 401

    def get_headers(self, environ=None, scope=None):  # type: ignore[no-untyped-def]
        return [*super().get_headers(environ, scope), ("X-Shopify-Retry-Invalid-Session-Request", "1")]


def authenticate() -> Merchant:
    """The merchant behind this request, or 401. Runs on every request of the page."""
    rt = runtime()
    settings = rt.settings
    raw = _session_token_value()
    if raw:
        try:
            token = verify_session_token(
                raw, settings.shopify_api_key, (settings.shopify_api_secret, settings.shopify_api_secret_previous)
            )
        except SessionTokenError as exc:
            raise SessionRejected(str(exc)) from None
        with rt.sessions() as session:
            shop_id = session.scalar(select(Shop.id).where(Shop.platform == "shopify", Shop.domain == token.shop))
        return Merchant(
            shop_domain=token.shop,
            platform="shopify",
            shop_id=shop_id,
            embedded=True,
            session_key=token.session_id or token.user,
            actor=f"merchant (Shopify user {token.user or '?'})",
            session_token=token,
            raw_session_token=raw,
        )
    link = request.args.get("t") or request.form.get("t") or ""
    if link:
        shop_id, nonce = _read_link(settings, link)
        with rt.sessions() as session:
            shop = session.get(Shop, shop_id)
            if shop is None:
                abort(401, "this link's shop no longer exists")
            return Merchant(
                shop_domain=shop.domain,
                platform=shop.platform,
                shop_id=shop.id,
                embedded=False,
                session_key=nonce,
                actor="merchant (signed link)",
                link=link,
            )
    raise SessionRejected("sign in through your shop's admin (no session token or link)")


def csrf_token(merchant: Merchant) -> str:
    key = runtime().settings.secret_key.encode()
    message = f"csrf|{merchant.platform}|{merchant.shop_domain}|{merchant.session_key}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check_csrf(merchant: Merchant) -> None:
    given = request.form.get("csrf_token", "") or request.headers.get("X-CSRF-Token", "")
    if not given or not hmac.compare_digest(given.encode(), csrf_token(merchant).encode()):
        abort(403, "the form is stale or did not come from this page: reload and try again")


def frame_ancestors(merchant: Merchant | None) -> str:
    """Embedded pages may be framed by the shop's admin only; everything else by nobody."""
    if merchant is not None and merchant.embedded:
        return f"frame-ancestors https://{merchant.shop_domain} https://admin.shopify.com;"
    return "frame-ancestors 'none';"
