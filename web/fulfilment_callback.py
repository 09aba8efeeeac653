"""Shopify's hosted endpoint of a fulfilment service: ``<callbackUrl>/fulfillment_order_notification``.

A ping (``{"kind": "FULFILLMENT_REQUEST"}`` or ``"CANCELLATION_REQUEST"``, no order data), signed
like a webhook: ``X-Shopify-Hmac-Sha256`` over the raw body with the app secret, the shop in
``X-Shopify-Shop-Domain`` (shopify.dev FulfillmentService, "Hosted endpoints"). A bad signature
is 401 and changes nothing; a good one enqueues the shop's poll of ``assignedFulfillmentOrders``,
which finds what waits (the ping itself is never trusted for content). If the enqueue fails the
answer is still 200: the scheduled poll finds the same requests.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from integrations.errors import WebhookRejected
from integrations.shopify import webhooks as shopify_webhooks
from integrations.shopify.fulfilment_service import CALLBACK_PATH
from jobs.fulfilment_service import enqueue_poll
from store.fulfilment_orders import in_service_mode
from store.models import Shop
from web import runtime
from web.webhooks import raw_body, require_json_object

log = logging.getLogger(__name__)
blueprint = Blueprint("fulfilment_callback", __name__)

KINDS = frozenset({"FULFILLMENT_REQUEST", "CANCELLATION_REQUEST"})


@blueprint.post(CALLBACK_PATH + "/fulfillment_order_notification")
def notification():  # type: ignore[no-untyped-def]
    settings = runtime().settings
    body = raw_body()
    signature = shopify_webhooks.header(request.headers, "Hmac-Sha256")
    secrets = (settings.shopify_api_secret, settings.shopify_api_secret_previous)
    if not shopify_webhooks.verify(secrets, body, signature):
        raise WebhookRejected("invalid or missing HMAC signature", 401)
    kind = require_json_object(body).get("kind")
    if kind not in KINDS:
        raise WebhookRejected(f"kind is one of {', '.join(sorted(KINDS))}", 400)
    domain = shopify_webhooks.header(request.headers, "Shop-Domain").strip().lower()
    with runtime().sessions() as session:
        shop = session.execute(
            select(Shop).where(Shop.platform == "shopify", Shop.domain == domain)
        ).scalar_one_or_none()
        if shop is None or shop.status != "active":
            raise WebhookRejected(f"shop {domain or '(none)'} is not installed", 404)
        if not in_service_mode(shop):
            return jsonify(status="ignored", reason="the shop is not in fulfilment-service mode"), 200
        shop_id = shop.id
    try:
        enqueue_poll(runtime(), shop_id)
    except Exception:
        log.exception("shop %s: fulfilment notification not enqueued; the scheduled poll will see it", shop_id)
    return jsonify(status="accepted", kind=kind), 200
