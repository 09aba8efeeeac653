"""Who may use the WooCommerce connect and keys pages: a merchant holding a signed link.

Those pages store a store's keys and make Relais call the address given, so an anonymous visitor
must not reach them. Two links prove the caller:

- a **connect link** (``?g=``) the operator prints with ``flask --app app woocommerce
  connect-link [STORE_URL]``: signed, expiring (24 h by default), optionally bound to one store
  address (the form then cannot name another);
- the **settings link** (``?t=``) of an existing WooCommerce shop (``web.app_session``), which the
  settings page turns into a link to the keys page: bound to that shop's address.

Forms carry the link and a CSRF token bound to the link's nonce (``app_session.csrf_token``), so
a token lifted from one link cannot post for another.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import abort, request
from itsdangerous import BadSignature, URLSafeSerializer

from config import Settings
from web import runtime
from web.app_session import LINK_LIFETIME, Merchant, authenticate, check_csrf, csrf_token

_CONNECT_SALT = "relais-woocommerce-connect"


def connect_link(settings: Settings, store_url: str = "", lifetime: int = LINK_LIFETIME) -> str:
    """A URL of the connect page that lets its holder connect a store for ``lifetime`` seconds;
    ``store_url`` (normalised) binds it to that one store."""
    payload = {"u": store_url, "n": secrets.token_hex(8), "e": int(time.time()) + lifetime}
    token = URLSafeSerializer(settings.secret_key, salt=_CONNECT_SALT).dumps(payload)
    return f"{settings.public_url.rstrip('/')}/woocommerce/connect?{urlencode({'g': token})}"


@dataclass(frozen=True)
class ConnectAccess:
    """The proven caller of a connect page: who (for CSRF), which store (``""``: any the merchant
    types), and the link parameter every URL and form of the flow carries on."""

    merchant: Merchant
    store_url: str
    param: str
    token: str

    def params(self) -> dict[str, str]:
        return {self.param: self.token}

    def csrf(self) -> str:
        return csrf_token(self.merchant)


def connect_access(post: bool = False) -> ConnectAccess:
    """The caller's access, or 401/403 before anything is read, stored or fetched."""
    grant = request.args.get("g") or request.form.get("g") or ""
    if grant:
        access = _from_grant(grant)
    elif request.args.get("t") or request.form.get("t"):
        merchant = authenticate()
        if merchant.platform != "woocommerce" or merchant.shop_id is None:
            abort(403, "this link is not for a WooCommerce store")
        access = ConnectAccess(merchant, merchant.shop_domain, "t", merchant.link)
    else:
        abort(401, "open the link you were given to connect your store (ask for a new one if it is lost)")
    if post:
        check_csrf(access.merchant)
    return access


def _from_grant(token: str) -> ConnectAccess:
    try:
        payload = URLSafeSerializer(runtime().settings.secret_key, salt=_CONNECT_SALT).loads(token)
    except BadSignature:
        abort(401, "this link is not valid")
    if not isinstance(payload, dict) or int(payload.get("e", 0)) < time.time():
        abort(401, "this link has expired; ask for a new one")
    store_url, nonce = str(payload.get("u") or ""), str(payload.get("n") or "")
    merchant = Merchant(
        shop_domain=store_url or "*",
        platform="woocommerce",
        shop_id=None,
        embedded=False,
        session_key=nonce,
        actor="merchant (connect link)",
    )
    return ConnectAccess(merchant, store_url, "g", token)
