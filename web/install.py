"""Installing on Shopify, both ways Shopify offers.

Authorization-code grant (non-embedded installs): ``GET /shopify/install?shop=…`` → 302 to the
shop's ``/admin/oauth/authorize`` with a state nonce kept in a signed cookie; Shopify sends the
merchant back to ``GET /shopify/callback``, which checks, before anything is stored or any call
is made: the hex query HMAC, the timestamp (±90 s), the shop hostname, and the state against the
cookie. Only then is the code exchanged for an expiring offline token.

Token exchange (the embedded page, Shopify-managed install): the App Bridge session token the
page already verified is exchanged for an expiring offline token on first sight of the shop
(``ensure_installed``), or by ``POST /shopify/session`` from the page's script.

Either way the shop is stored active with its tokens, and a job checks its webhook subscriptions.
"""

from __future__ import annotations

import logging
import secrets
import time
from urllib.parse import urlencode

from flask import Blueprint, abort, jsonify, make_response, redirect, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from integrations.errors import AuthError, InvalidRequestError, RetryableError
from integrations.shopify.app_config import app_config
from integrations.shopify.auth import timestamp_fresh, valid_shop, verify_query
from integrations.shopify.oauth import TokenEndpoint, TokenSet
from jobs.queues import enqueue_once
from store.db import transaction
from store.installs import credentials, find_shop, install_shopify
from web import runtime
from web.app_session import Merchant, authenticate

log = logging.getLogger(__name__)
blueprint = Blueprint("install", __name__)

STATE_COOKIE = "shopify_app_state"
STATE_LIFETIME = 600  # seconds between the redirect to Shopify and the callback
_STATE_SALT = "relais-shopify-state"


def _secrets() -> tuple[str, str]:
    s = runtime().settings
    return s.shopify_api_secret, s.shopify_api_secret_previous


def _state_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime().settings.secret_key, salt=_STATE_SALT)


def _endpoint() -> TokenEndpoint:
    rt = runtime()
    return TokenEndpoint(rt.settings, rt.http, timeout=rt.settings.provider_timeout)


def _after_install(shop_id: int) -> None:
    try:
        enqueue_once(runtime(), "maintenance", "jobs.lifecycle.after_install", shop_id, job_id=f"installed-{shop_id}")
        # Fulfilment-service mode (the default of an app install): its service and location.
        enqueue_once(
            runtime(), "maintenance", "jobs.fulfilment_service.create_service", shop_id, job_id=f"fservice-{shop_id}"
        )
    except Exception:  # the install stands; the subscription check can be run again later
        log.exception("shop %s installed but its subscription check was not enqueued", shop_id)


@blueprint.get("/shopify/install")
def install():  # type: ignore[no-untyped-def]
    """Start the authorization-code grant. When Shopify sends the request (App URL of a
    non-embedded app) it is signed; a signed request that does not verify is refused."""
    rt = runtime()
    settings = rt.settings
    shop = valid_shop(request.args.get("shop"))
    if shop is None:
        abort(400, "shop must be a *.myshopify.com domain")
    if "hmac" in request.args and not verify_query(_secrets(), request.args.to_dict(flat=False)):
        abort(401, "invalid signature")
    nonce = secrets.token_hex(32)  # as Shopify's JS library: 32 random bytes, hex
    query = {
        "client_id": settings.shopify_api_key,
        "scope": ",".join(app_config().scopes),
        "redirect_uri": settings.public_url.rstrip("/") + "/shopify/callback",
        "state": nonce,
    }  # no grant_options[]: an offline (shop) token, not a per-user one
    authorize = settings.shopify_admin_url.format(shop=shop).rstrip("/") + "/admin/oauth/authorize?" + urlencode(query)
    response = make_response(redirect(authorize, 302))
    response.set_cookie(
        STATE_COOKIE,
        _state_serializer().dumps({"nonce": nonce, "shop": shop}),
        max_age=STATE_LIFETIME,
        httponly=True,
        secure=settings.public_url.startswith("https://"),
        samesite="Lax",  # sent on Shopify's top-level redirect back to the callback
        path="/shopify/",
    )
    return response


@blueprint.get("/shopify/callback")
def callback():  # type: ignore[no-untyped-def]
    """Check everything Shopify's redirect claims, then exchange the code. Nothing is stored, and
    Shopify is not called, unless every check passes."""
    rt = runtime()
    params = request.args.to_dict(flat=False)
    if not verify_query(_secrets(), params):
        abort(401, "invalid signature")
    if not timestamp_fresh(request.args.get("timestamp"), time.time()):
        abort(401, "the request is too old (or its clock too far off)")
    shop = valid_shop(request.args.get("shop"))
    if shop is None:
        abort(400, "shop must be a *.myshopify.com domain")
    try:
        state = _state_serializer().loads(request.cookies.get(STATE_COOKIE, ""), max_age=STATE_LIFETIME)
    except (BadSignature, SignatureExpired):
        abort(403, "the install was not started here, or took too long: start again")
    given = request.args.get("state", "")
    if not (
        isinstance(state, dict)
        and secrets.compare_digest(str(state.get("nonce", "")), given)
        and state.get("shop") == shop
    ):
        abort(403, "state does not match this install")
    code = request.args.get("code", "")
    if not code:
        abort(400, "no code")
    try:
        tokens = _endpoint().exchange_code(shop, code)
    except (AuthError, InvalidRequestError) as exc:
        abort(403, str(exc))
    except RetryableError as exc:
        abort(502, f"Shopify could not be reached: {exc}")
    shop_id = _store(shop, tokens, "authorization code grant")
    # Into the app inside the shop's admin, as Shopify's own libraries end the grant.
    admin = rt.settings.shopify_admin_url.format(shop=shop).rstrip("/")
    response = make_response(redirect(f"{admin}/admin/apps/{rt.settings.shopify_api_key}"))
    response.delete_cookie(STATE_COOKIE, path="/shopify/")
    log.info("shop %s (%s) installed through the authorization-code grant", shop_id, shop)
    return response


def _store(shop: str, tokens: TokenSet, how: str) -> int:
    rt = runtime()
    with transaction(rt.sessions) as session:
        shop_id = install_shopify(session, rt.vault, shop, tokens, how).id
    _after_install(shop_id)
    return shop_id


def needs_install(merchant: Merchant) -> bool:
    """True when the embedded page's shop has no working offline token stored."""
    if not merchant.embedded:
        return False
    rt = runtime()
    with rt.sessions() as session:
        shop = find_shop(session, "shopify", merchant.shop_domain)
        if shop is None or shop.status != "active":
            return True
        stored = TokenSet.from_credentials(credentials(rt.vault, shop))
    if not stored.access_token:
        return True
    spent = stored.refresh_token_expires_at is not None and stored.refresh_token_expires_at < time.time()
    return spent  # the refresh token is dead too: only a new exchange brings the shop back


def ensure_installed(merchant: Merchant) -> Merchant:
    """Token exchange for a shop seen for the first time (or after an uninstall); returns the
    merchant with its shop id. Raises ``AuthError``/``RetryableError``."""
    if not needs_install(merchant):
        return merchant
    tokens = _endpoint().exchange_session_token(merchant.shop_domain, merchant.raw_session_token)
    shop_id = _store(merchant.shop_domain, tokens, "token exchange")
    log.info("shop %s (%s) installed through token exchange", shop_id, merchant.shop_domain)
    return Merchant(**{**merchant.__dict__, "shop_id": shop_id})


@blueprint.post("/shopify/session")
def session_exchange():  # type: ignore[no-untyped-def]
    """Token exchange on demand (``Authorization: Bearer <session token>``)."""
    merchant = authenticate()
    if not merchant.embedded:
        abort(400, "token exchange needs an App Bridge session token")
    try:
        merchant = ensure_installed(merchant)
    except AuthError as exc:
        return jsonify(installed=False, error=str(exc)), 401
    except (RetryableError, InvalidRequestError) as exc:
        return jsonify(installed=False, error=str(exc)), 502
    return jsonify(installed=True, shop=merchant.shop_domain)
