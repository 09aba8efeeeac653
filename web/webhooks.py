"""Webhook receivers: verify on the raw bytes, find the shop, store, commit, enqueue, answer.

Nothing else happens in the request: no parsing beyond what rejecting bad input needs, no
outbound call. The inbox row is committed before the 2xx; the job carries only its id. If the
enqueue fails after the commit, the answer is still 200: the row is durable and the sweep
(``jobs.maintenance.sweep``) enqueues it.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from config import log_context
from integrations import fulfilment, jsonbody
from integrations.errors import ConfigError, WebhookRejected
from integrations.fulfilment.reference import parse_reference
from integrations.shopify import webhooks as shopify_webhooks
from jobs.maintenance import enqueue_event, enqueue_new_event
from jobs.parties import provider_for
from store import inbox, metrics
from store.models import Shop
from web import runtime

try:  # gunicorn's body reader raises its own errors on bad chunked encoding (not OSError)
    from gunicorn.http.errors import ParseException as _ServerParseError
except ImportError:  # pragma: no cover - gunicorn is a dependency; the dev server raises OSError
    _ServerParseError = OSError  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)
blueprint = Blueprint("webhooks", __name__)

# Headers kept with the inbox row (never the signature: it is useless once verified).
KEPT_HEADERS = (
    "X-Shopify-Topic",
    "X-Shopify-Shop-Domain",
    "X-Shopify-Webhook-Id",
    "X-Shopify-Event-Id",
    "X-Shopify-Triggered-At",
    "X-Shopify-API-Version",
    "webhook-id",
    "webhook-timestamp",
    "x-webhook-topic",
    "Content-Type",
)


def rejected(error: WebhookRejected):  # type: ignore[no-untyped-def]
    """Every receiver's refusals, as JSON with the error's status (registered app-wide)."""
    log.info("webhook rejected (%s): %s", error.status, error)
    metrics.count_rejection(runtime().redis, error.status)  # by reason class, for GET /metrics
    return jsonify(error=str(error)), error.status


# Seconds a sender is asked to wait when the database refuses (Shopify retries on its own
# schedule whatever this says; it is a hint for the others).
DATABASE_RETRY_AFTER = 5


def database_unavailable(error: DBAPIError):  # type: ignore[no-untyped-def]
    """A webhook that arrives while the database refuses or drops connections gets 503 with a
    JSON reason, never a 500 and never a 200: nothing was stored, so the platform must send it
    again (Shopify and the providers retry any non-2xx). Registered app-wide for ``DBAPIError``;
    other paths, and database errors that are bugs rather than outages, keep Flask's 500."""
    outage = isinstance(error, (OperationalError, InterfaceError)) or error.connection_invalidated
    if not (outage and request.path.startswith("/webhooks/")):
        raise error
    log.warning("webhook refused with 503, database unavailable: %s", type(error.orig).__name__)
    metrics.count_rejection(runtime().redis, 503)
    response = jsonify(error="database unavailable; nothing was stored, retry later")
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response, 503


def raw_body() -> bytes:
    """The request's bytes, read once and bounded before anything parses them.

    A body that cannot be read (bad chunked encoding, shorter than its Content-Length, the
    client gone) is the sender's fault: 400, never a 500. The bytes are then checked by
    ``integrations.jsonbody.check`` (strict UTF-8, nesting depth, number length), so every later
    reader, the unverified reference lookup of a provider included, parses bounded input.
    """
    limit = runtime().settings.max_webhook_bytes
    if request.content_length is not None and request.content_length > limit:
        raise WebhookRejected(f"body over {limit} bytes", 413)
    try:
        body = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise WebhookRejected(f"body over {limit} bytes", 413) from None
    except (BadRequest, OSError, ValueError, _ServerParseError) as exc:  # ClientDisconnected is a BadRequest
        log.info("webhook body unreadable: %s", type(exc).__name__)
        raise WebhookRejected("request body is malformed or incomplete", 400) from None
    if len(body) > limit:
        raise WebhookRejected(f"body over {limit} bytes", 413)
    if request.content_length is not None and len(body) != request.content_length:
        # gunicorn marks its input terminated, so Werkzeug reads to EOF without comparing.
        raise WebhookRejected("request body is malformed or incomplete", 400)
    g.relais_checked_body = (body, jsonbody.checked(body))
    return body


def require_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (bounded parse, see ``integrations.jsonbody``); 400 otherwise."""
    read, checked = g.get("relais_checked_body", (None, None))
    if read is body:  # raw_body checked (and parsed) these very bytes
        return jsonbody.object_of(checked)
    return jsonbody.parse_object(body)


def _kept_headers() -> dict[str, str]:
    return {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}


def store_delivery(
    source: str, delivery_key: str, shop_id: int, topic: str, body: bytes, event_key: str | None = None
) -> tuple[int, bool]:
    """Store a delivery for a shop the receiver has verified, committed, and enqueue its job when
    it needs one; (id, needs a job). A repeat delivery returns the first row. Every receiver but
    Shopify's uses this (``store.inbox``: one statement, the unique constraints decide)."""
    delivery = inbox.Delivery(source, delivery_key, topic, body, _kept_headers(), event_key)
    stored = inbox.store(runtime().engine, delivery, inbox.shop_by_id(shop_id))
    if stored is None:  # deleted since the receiver found it (shop/redact): nobody to store it for
        raise WebhookRejected(f"shop {shop_id} does not exist any more", 404)
    enqueue_stored(stored)
    return stored.event_id, stored.needs_job


def enqueue_stored(stored: inbox.Stored) -> None:
    """Enqueue the stored delivery's job, if it needs one. The row is committed: should Redis
    fail now, the answer is still 200 and the sweep (``jobs.maintenance.sweep``) enqueues it.
    The shop is bound first, so per-shop fairness (``jobs.fairness``) needs no lookup."""
    if not stored.needs_job:
        return
    try:
        with log_context.bound(shop_id=stored.shop_id, event_id=stored.event_id):
            if stored.new:
                enqueue_new_event(runtime(), stored.event_id)
            else:
                enqueue_event(runtime(), stored.event_id)
    except Exception:
        log.exception("event %s stored but not enqueued; the sweep will enqueue it", stored.event_id)


@blueprint.post("/webhooks/shopify")
def shopify():  # type: ignore[no-untyped-def]
    """Shopify deliveries for every installed shop (the app's secret signs them all)."""
    settings = runtime().settings
    body = raw_body()
    signature = shopify_webhooks.header(request.headers, "Hmac-Sha256")
    secrets = (settings.shopify_api_secret, settings.shopify_api_secret_previous)
    if not shopify_webhooks.verify(secrets, body, signature):
        raise WebhookRejected("invalid or missing HMAC signature", 401)
    topic = shopify_webhooks.header(request.headers, "Topic")
    domain = shopify_webhooks.header(request.headers, "Shop-Domain").strip().lower()
    webhook_id = shopify_webhooks.header(request.headers, "Webhook-Id")
    if not (topic and domain and webhook_id):
        raise WebhookRejected("missing topic, shop domain or webhook id header", 400)
    require_json_object(body)
    if topic not in shopify_webhooks.ACCEPTED_TOPICS:
        _known_shop(domain, topic)  # lifecycle topics are all handled: 404 is the only refusal
        return jsonify(status="ignored", reason=f"topic {topic} not handled"), 200
    # The same event reaches us once per matching subscription (different webhook ids): keyed on
    # X-Shopify-Event-Id too, per topic, it is stored and processed once.
    shopify_event = shopify_webhooks.header(request.headers, "Event-Id").strip()
    event_key = f"{topic}:{shopify_event}"[:255] if shopify_event else None
    delivery = inbox.Delivery("shopify", f"{domain}:{webhook_id}", topic, body, _kept_headers(), event_key)
    # One statement finds the shop and stores the delivery (``store.inbox``): none is cached.
    stored = inbox.store(runtime().engine, delivery, inbox.shop_by_domain("shopify", domain))
    if stored is None:
        return _unknown_shop(domain, topic)
    enqueue_stored(stored)
    return jsonify(status="accepted", event_id=stored.event_id), 200


def _known_shop(domain: str, topic: str) -> None:
    """Refuse a delivery of a topic we do not handle for a shop we do not know (404, as any)."""
    with runtime().sessions() as session:
        known = session.scalar(select(Shop.id).where(inbox.shop_by_domain("shopify", domain).where()))
    if known is None:
        raise WebhookRejected(f"shop {domain} is not installed", 404)


def _unknown_shop(domain: str, topic: str):  # type: ignore[no-untyped-def]
    if topic in shopify_webhooks.LIFECYCLE_TOPICS:
        # Nothing is kept for a shop we do not know (never installed, or already redacted): a
        # privacy request or uninstall is then complete; refusing it would only make Shopify
        # retry it for hours.
        return jsonify(status="ignored", reason=f"no data held for {domain}"), 200
    raise WebhookRejected(f"shop {domain} is not installed", 404)


# Longest webhook token accepted in a URL (``store.models.new_webhook_token`` makes 32 characters);
# the largest shop id a reference may name (a bigger one is nobody's, and PostgreSQL's BIGINT).
_MAX_TOKEN_LENGTH = 64
_MAX_SHOP_ID = 2**63 - 1


def _verified_shop(provider: str, body: bytes, *, shop_id: int | None = None, token: str | None = None) -> int:
    """The one shop this delivery is for, once that shop's own provider secret verified it.

    The shop comes from the URL's webhook token or else the body's reference, by one primary-key
    or unique-index lookup; only its options are decrypted. Nothing else is tried: a delivery
    signed by another account (another shop's secret, a sandbox account forging a reference that
    is not its own) is refused with 401, never matched to whichever shop it verifies with.
    """
    rt = runtime()
    with rt.sessions() as session:
        if token is not None:
            shop = session.execute(select(Shop).where(Shop.webhook_token == token)).scalar_one_or_none()
            if shop is None or shop.provider != provider:
                raise WebhookRejected(f"no shop of ours receives {provider} deliveries at this address", 404)
        else:
            shop = session.get(Shop, shop_id)
            if shop is None or shop.provider != provider:
                raise WebhookRejected(f"the shop this delivery names does not use {provider}", 401)
        found, adapter = shop.id, provider_for(rt, shop)
    adapter.verify_webhook(request.headers, body)  # WebhookRejected(401) unless this shop's secret signed it
    return found


@blueprint.post("/webhooks/fulfilment/<provider>")
@blueprint.post("/webhooks/fulfilment/<provider>/<token>")
def provider_webhook(provider: str, token: str | None = None):  # type: ignore[no-untyped-def]
    """A provider's delivery. The shop's own URL (``…/<provider>/<webhook token>``) names the shop;
    on the bare URL the body's order reference does. A delivery naming neither is refused: which
    shop it belongs to is never guessed by trying secrets."""
    try:
        cls = fulfilment.get(provider)
    except ConfigError:
        raise WebhookRejected(f"unknown provider {provider}", 404) from None
    if token is not None and not 0 < len(token) <= _MAX_TOKEN_LENGTH:
        raise WebhookRejected(f"no shop of ours receives {provider} deliveries at this address", 404)
    body = raw_body()
    delivery_id = cls.webhook_delivery_id(request.headers)
    if not delivery_id:
        raise WebhookRejected("missing delivery id header", 401)
    if token is not None:
        shop_id = _verified_shop(provider, body, token=token)
    else:
        parsed = parse_reference(cls.webhook_reference(request.headers, body))
        if parsed is None:
            raise WebhookRejected(
                f"this delivery names no order reference of ours; send it to the shop's own address "
                f"/webhooks/fulfilment/{provider}/<webhook token>",
                400,
            )
        if parsed[0] > _MAX_SHOP_ID:
            raise WebhookRejected(f"the shop this delivery names does not use {provider}", 401)
        shop_id = _verified_shop(provider, body, shop_id=parsed[0])
    require_json_object(body)
    topic = cls.webhook_topic(request.headers, body) or "unknown"
    event_id, _ = store_delivery(provider, f"{shop_id}:{delivery_id}", shop_id, topic, body)
    return jsonify(status="accepted", event_id=event_id), 200
