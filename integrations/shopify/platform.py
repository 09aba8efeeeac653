"""Shopify as a ``Platform``: what the jobs ask of a Shopify shop."""

from __future__ import annotations

import json

from integrations.platforms import OrderEvent, Platform
from integrations.shopify import webhooks
from integrations.shopify.orders import parse_order


class ShopifyPlatform(Platform):
    name = "shopify"

    @classmethod
    def event_kind(cls, topic: str) -> str:
        if topic in webhooks.ORDER_TOPICS:
            return "order"
        if topic in webhooks.LIFECYCLE_TOPICS:
            return "lifecycle"
        if topic.startswith(("inventory_items/", "products/")):
            return "inventory"
        return "ignored"

    def parse_order_event(self, topic: str, body: bytes) -> OrderEvent:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("order payload is not a JSON object")
        order = parse_order(payload)
        return OrderEvent(platform_order_id=order.platform_order_id, order=order)
