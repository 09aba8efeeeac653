"""Webhook receivers: verify on the raw bytes, find the shop, store, commit, enqueue, answer.

Nothing else happens in the request: no parsing beyond what rejecting bad input needs, no
outbound call. The inbox row is committed before the 2xx; the job carries only its id. If the
enqueue fails after the commit, the answer is still 200: the row is durable and the sweep
(``jobs.maintenance.sweep``) enqueues it.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from integrations import fulfilment
from integrations.errors import ConfigError, WebhookRejected
from integrations.fulfilment.reference import parse_reference
from integrations.shopify import webhooks as shopify_webhooks
from jobs.maintenance import enqueue_event
from jobs.parties import provider_for
from store.models import Shop, WebhookEvent
from web import runtime

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
    return jsonify(error=str(error)), error.status


def raw_body() -> bytes:
    limit = runtime().settings.max_webhook_bytes
    if request.content_length is not None and request.content_length > limit:
        raise WebhookRejected(f"body over {limit} bytes", 413)
    try:
        body = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise WebhookRejected(f"body over {limit} bytes", 413) from None
    if len(body) > limit:
        raise WebhookRejected(f"body over {limit} bytes", 413)
    return body


def require_json_object(body: bytes) -> None:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected("body is not JSON", 400) from None
    if not isinstance(payload, dict):
        raise WebhookRejected("body is not a JSON object", 400)


def _kept_headers() -> dict[str, str]:
    return {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}


def store_delivery(source: str, delivery_key: str, shop_id: int, topic: str, body: bytes) -> tuple[int, bool]:
    """Insert the inbox row and commit; (id, needs a job). A repeat delivery returns the first row,
    needing a job again only if the first one was never enqueued. Every receiver uses this."""
    rt = runtime()
    with rt.sessions() as session:
        event = WebhookEvent(
            source=source, delivery_key=delivery_key, shop_id=shop_id, topic=topic, headers=_kept_headers(), body=body
        )
        session.add(event)
        try:
            session.commit()
            return event.id, True
        except IntegrityError:
            session.rollback()
        existing = session.execute(
            select(WebhookEvent.id, WebhookEvent.status).where(
                WebhookEvent.source == source, WebhookEvent.delivery_key == delivery_key
            )
        ).one()
        return existing.id, existing.status == "received"


def enqueue_stored(event_id: int) -> None:
    try:
        enqueue_event(runtime(), event_id)
    except Exception:
        log.exception("event %s stored but not enqueued; the sweep will enqueue it", event_id)


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
    with runtime().sessions() as session:
        shop = session.execute(
            select(Shop).where(Shop.platform == "shopify", Shop.domain == domain)
        ).scalar_one_or_none()
        if shop is None:
            if topic in shopify_webhooks.LIFECYCLE_TOPICS:
                # Nothing is kept for a shop we do not know (never installed, or already redacted):
                # a privacy request or uninstall is then complete; refusing it would only make
                # Shopify retry it for hours.
                return jsonify(status="ignored", reason=f"no data held for {domain}"), 200
            raise WebhookRejected(f"shop {domain} is not installed", 404)
        shop_id = shop.id
    if topic not in shopify_webhooks.ACCEPTED_TOPICS:
        return jsonify(status="ignored", reason=f"topic {topic} not handled"), 200
    event_id, needs_job = store_delivery("shopify", f"{domain}:{webhook_id}", shop_id, topic, body)
    if needs_job:
        enqueue_stored(event_id)
    return jsonify(status="accepted", event_id=event_id), 200


def _verified_shop(provider: str, shop_id: int | None, body: bytes) -> int:
    """The shop whose provider secret signed this delivery.

    The shop named by the URL or the body's reference is checked first; a delivery naming none
    (an account-wide event) is tried against each active shop of that provider, since one
    provider account's subscription signs with that account's secret.
    """
    rt = runtime()
    with rt.sessions() as session:
        if shop_id is not None:
            shop = session.get(Shop, shop_id)
            candidates = [shop] if shop is not None and shop.provider == provider else []
        else:
            candidates = list(
                session.scalars(
                    select(Shop).where(Shop.provider == provider, Shop.status == "active").order_by(Shop.id)
                )
            )
        adapters = [(shop.id, provider_for(rt, shop)) for shop in candidates]
    for candidate_id, adapter in adapters:
        try:
            adapter.verify_webhook(request.headers, body)
        except WebhookRejected:
            continue
        return candidate_id
    raise WebhookRejected("no shop of ours signed this delivery for this provider", 401)


@blueprint.post("/webhooks/fulfilment/<provider>")
@blueprint.post("/webhooks/fulfilment/<provider>/<int:shop_id>")
def provider_webhook(provider: str, shop_id: int | None = None):  # type: ignore[no-untyped-def]
    """A provider's delivery; its reference (or the URL) names the shop whose secret signs it."""
    try:
        cls = fulfilment.get(provider)
    except ConfigError:
        raise WebhookRejected(f"unknown provider {provider}", 404) from None
    body = raw_body()
    delivery_id = cls.webhook_delivery_id(request.headers)
    if not delivery_id:
        raise WebhookRejected("missing delivery id header", 401)
    if shop_id is None:
        parsed = parse_reference(cls.webhook_reference(request.headers, body))
        shop_id = parsed[0] if parsed else None
    shop_id = _verified_shop(provider, shop_id, body)
    require_json_object(body)
    topic = cls.webhook_topic(request.headers, body) or "unknown"
    event_id, needs_job = store_delivery(provider, f"{shop_id}:{delivery_id}", shop_id, topic, body)
    if needs_job:
        enqueue_stored(event_id)
    return jsonify(status="accepted", event_id=event_id), 200
