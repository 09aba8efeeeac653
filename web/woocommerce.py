"""WooCommerce at the HTTP edge: the webhook receiver and the connect pages.

Receiver (``POST /webhooks/woocommerce/<shop id>``): the unsigned ``webhook_id=<n>`` ping gets a
plain 200 and is stored nowhere; anything else must carry that store's own signature over the
raw bytes (another store's secret is 401 and stores nothing); our own writes echoing back are
dropped; the rest is stored in the inbox under a key built from the order, its
``date_modified_gmt`` and the body digest (the delivery id is not unique), committed, enqueued,
and only then answered 200, well inside WooCommerce's 60 s.

Connect: the merchant gives the store URL, we issue a one-time state and send them to
``/wc-auth/v1/authorize``; the store posts the keys to our callback, which stores them encrypted
and answers 200 at once (anything else makes WooCommerce delete the key); a job checks them and
creates our webhooks. A manual keys form does the same for stores where the redirect fails.

The connect and keys pages store keys and make Relais call the address given, so they need a
merchant's signed link (``web.woocommerce_access``: the operator's connect link or a shop's
settings link; anonymous → 401, nothing read, stored or fetched), every form carries a CSRF
token, and every page refuses to be framed. The store address is refused at once, before
anything is stored, when Relais would not call it (``integrations.outbound``: a private or
loopback address, plain http in production); the call itself checks again at connect time.
What the merchant reads is a plain reason, never an answer's body or an exception's text.
The callback (store → us) stays open by design: only the one-time state binds it, and it
fetches nothing (a job checks the keys).
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from integrations import fulfilment
from integrations.errors import ConfigError, WebhookRejected
from integrations.outbound import OutboundError, OutboundPolicy, check_url
from integrations.woocommerce import connect, echoes
from integrations.woocommerce import webhooks as wc
from jobs.shop_setup import enqueue_setup
from store.db import transaction
from store.models import Shop
from store.shops import provider_names
from store.sync_models import ShopSync, tell_merchant
from store.woocommerce_models import claim_state, find_state, issue_state, register_store
from web import runtime
from web.webhooks import raw_body, require_json_object, store_delivery
from web.woocommerce_access import ConnectAccess, connect_access

log = logging.getLogger(__name__)
blueprint = Blueprint("woocommerce", __name__)
_KEY = re.compile(r"^(ck|cs)_[0-9a-f]{40}$")


@blueprint.post("/webhooks/woocommerce/<int:shop_id>")
def webhook(shop_id: int):  # type: ignore[no-untyped-def]
    body = raw_body()
    if wc.is_ping(request.headers, body):
        return Response("", 200)
    rt = runtime()
    with rt.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.platform != "woocommerce":
            raise WebhookRejected("unknown store", 404)
        secret = (rt.vault.open(shop.credentials_enc) or {}).get("webhook_secret", "")
    if not wc.verify(secret, body, request.headers.get(wc.SIGNATURE_HEADER, "")):
        raise WebhookRejected("invalid or missing X-WC-Webhook-Signature", 401)
    topic = request.headers.get(wc.TOPIC_HEADER, "")
    if not topic:
        raise WebhookRejected("missing X-WC-Webhook-Topic", 400)
    payload = require_json_object(body)
    problem = wc.error_payload(payload)
    if problem:
        # Signed, but the store could not build the payload: the webhook's owner lost access.
        with transaction(rt.sessions) as session:
            tell_merchant(session, shop_id, f"WooCommerce sent {topic} as an error ({problem}): reconnect the store")
        return jsonify(status="ignored", reason="error payload"), 200
    if topic not in wc.ACCEPTED_TOPICS:
        return jsonify(status="ignored", reason=f"topic {topic} not handled"), 200
    resource = topic.partition(".")[0]
    if topic.endswith(".updated") and echoes.is_echo(rt.redis, shop_id, resource, payload):
        return jsonify(status="ignored", reason="echo of our own write"), 200
    key = wc.delivery_key(shop_id, topic, payload, body, request.headers.get(wc.DELIVERY_HEADER, ""))
    event_id, _ = store_delivery("woocommerce", key, shop_id, topic, body)
    return jsonify(status="accepted", event_id=event_id), 200


def _providers() -> list[str]:
    """Providers a merchant can pick without operator-held options (others are set with ``shop add``)."""
    return [n for n in provider_names(runtime().settings) if not fulfilment.get(n).required_options()]


_PAGES = frozenset({"connect_form", "keys_form", "start_connect", "manual_keys", "connect_return", "callback"})


@blueprint.after_request
def _headers(response: Response) -> Response:
    """The flow's pages are never framed (clickjacking a keys form), cached, or leak their link."""
    if request.endpoint and request.endpoint.partition(".")[2] in _PAGES:
        response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"  # links carry their proof in the URL
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.errorhandler(HTTPException)
def _refused(error: HTTPException):  # type: ignore[no-untyped-def]
    """A plain page for the connect flow's refusals (401 no link, 403 stale form); webhooks keep theirs."""
    if request.path.startswith("/webhooks/"):
        return error
    status = error.code or 500
    return render_template("woocommerce/error.html", status=status, message=error.description), status


def _form(access: ConnectAccess, error: str = "", status: int = 200):  # type: ignore[no-untyped-def]
    return render_template(
        "woocommerce/connect.html", providers=_providers(), error=error, access=access, csrf=access.csrf()
    ), status


def _store_url(access: ConnectAccess) -> str:
    """The store's address (the link's own when it names one), refused now, before anything is
    stored, when Relais would not call it; the call itself checks again when it connects."""
    store_url = connect.normalise_store_url(access.store_url or request.form.get("store_url", ""))
    try:
        check_url(store_url, OutboundPolicy.from_settings(runtime().settings))
    except OutboundError as exc:
        raise ConfigError(f"Relais will not connect to this store: {exc.reason}") from None
    return store_url


@blueprint.get("/woocommerce/connect")
def connect_form():  # type: ignore[no-untyped-def]
    return _form(connect_access())


@blueprint.get("/woocommerce/keys")
def keys_form():  # type: ignore[no-untyped-def]
    """The same page, reached from a shop's settings page to replace its keys."""
    return _form(connect_access())


@blueprint.post("/woocommerce/connect")
def start_connect():  # type: ignore[no-untyped-def]
    access = connect_access(post=True)
    rt = runtime()
    provider = request.form.get("provider", "")  # none: the store starts without one, its orders wait
    public = rt.settings.public_url.rstrip("/")
    try:
        store_url = _store_url(access)
        if provider and provider not in _providers():
            raise ConfigError(f"unknown provider {provider}")
        with transaction(rt.sessions) as session:
            state = issue_state(session, store_url, provider)
            target = connect.authorize_url(
                store_url, state, f"{public}/woocommerce/callback", f"{public}/woocommerce/return"
            )
    except ConfigError as exc:
        return _form(access, str(exc), 400)
    return redirect(target, 302)


@blueprint.post("/woocommerce/callback")
def callback():  # type: ignore[no-untyped-def]
    """The store posts ``{key_id, user_id, consumer_key, consumer_secret, key_permissions}``."""
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        return Response("not JSON", 400)
    ck, cs = str(data.get("consumer_key") or ""), str(data.get("consumer_secret") or "")
    if data.get("key_permissions") != connect.SCOPE or not (_KEY.match(ck) and _KEY.match(cs)):
        return Response("keys missing or not read_write", 400)
    rt = runtime()
    with transaction(rt.sessions) as session:
        # A state we never issued, or one already used, stores nothing; the non-200 answer makes
        # WooCommerce delete the key it just made.
        row = claim_state(session, str(data.get("user_id") or ""))
        if row is None:
            log.warning("WooCommerce callback with an unknown, used or expired state: ignored")
            return Response("unknown state", 400)
        shop = register_store(session, rt.vault, row.store_url, ck, cs, row.provider)
        row.shop_id = shop.id
        shop_id = shop.id
    _enqueue(shop_id, "callback")
    return Response("", 200)


@blueprint.get("/woocommerce/return")
def connect_return():  # type: ignore[no-untyped-def]
    rt = runtime()
    declined = request.args.get("success") != "1"
    with rt.sessions() as session:
        row = find_state(session, request.args.get("user_id", ""))
        shop = session.get(Shop, row.shop_id) if row and row.shop_id else None
        sync = session.get(ShopSync, shop.id) if shop else None
        return render_template(
            "woocommerce/status.html",
            declined=declined,
            shop=shop,
            notice=sync.notice if sync else "",
            link=_link_params(),
            webhook_url=f"{rt.settings.public_url.rstrip('/')}/webhooks/woocommerce/{shop.id}" if shop else "",
        ), (200 if row else 404)


@blueprint.post("/woocommerce/keys")
def manual_keys():  # type: ignore[no-untyped-def]
    """The fallback: keys the merchant made in WooCommerce → Settings → Advanced → REST API."""
    access = connect_access(post=True)
    rt = runtime()
    ck, cs = request.form.get("consumer_key", "").strip(), request.form.get("consumer_secret", "").strip()
    provider = request.form.get("provider", "")  # none: the store starts without one, its orders wait
    try:
        store_url = _store_url(access)
        if provider and provider not in _providers():
            raise ConfigError(f"unknown provider {provider}")
        if not (_KEY.match(ck) and _KEY.match(cs)):
            raise ConfigError("a consumer key is ck_ and a consumer secret cs_, each followed by 40 hex characters")
        with transaction(rt.sessions) as session:
            state = issue_state(session, store_url, provider)
            row = claim_state(session, state)
            shop = register_store(session, rt.vault, store_url, ck, cs, provider)
            row.shop_id = shop.id
            shop_id = shop.id
    except ConfigError as exc:
        return _form(access, str(exc), 400)
    _enqueue(shop_id, "keys")
    return redirect(url_for("woocommerce.connect_return", success=1, user_id=state, **access.params()), 303)


def _link_params() -> dict[str, str]:
    """The merchant's link, carried on to the return page's "try again" links when it came with it
    (after the keys form; WooCommerce's own redirect back does not carry it)."""
    for name in ("g", "t"):
        if request.args.get(name):
            return {name: request.args[name]}
    return {}


def _enqueue(shop_id: int, how: str) -> None:
    try:
        enqueue_setup(runtime(), shop_id, how)
    except Exception:  # the keys are stored: the operator can re-run the setup; never lose the 200
        log.exception("shop %s stored but its setup job was not enqueued", shop_id)
