"""Shopify webhook verification and header reading, on the raw bytes of the request.

Shopify signs the exact body bytes: base64(HMAC-SHA256(app secret, body)), header
``X-Shopify-Hmac-Sha256`` (``shopify-hmac-sha256`` on Events deliveries). Re-serialising parsed
JSON breaks the signature because Shopify escapes ``/`` and ``&``; so we never do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

ORDER_TOPICS = frozenset({"orders/create", "orders/paid", "orders/updated", "orders/cancelled"})
LIFECYCLE_TOPICS = frozenset(
    {"app/uninstalled", "customers/data_request", "customers/redact", "shop/redact", "app/scopes_update"}
)
# Fulfilment-service mode: each names fulfilment orders to read again (jobs.fulfilment_requests).
FULFILMENT_ORDER_TOPICS = frozenset(
    {
        "fulfillment_orders/fulfillment_request_submitted",
        "fulfillment_orders/cancellation_request_submitted",
        "fulfillment_orders/placed_on_hold",
        "fulfillment_orders/hold_released",
        "fulfillment_orders/moved",
        "fulfillment_orders/split",
        "fulfillment_orders/merged",
        "fulfillment_orders/cancelled",
    }
)
#: A new fraud risk assessment of an order (Shopify's or an app's): releases an order waiting for it.
RISK_TOPIC = "orders/risk_assessment_changed"
ACCEPTED_TOPICS = (
    ORDER_TOPICS
    | LIFECYCLE_TOPICS
    | FULFILMENT_ORDER_TOPICS
    | frozenset(
        {
            "fulfillment_orders/order_routing_complete",
            "orders/edited",  # the edit only: the order is read back (shopify.order_edits)
            "inventory_items/create",
            "inventory_items/update",
            "inventory_items/delete",
            "products/update",
            RISK_TOPIC,
        }
    )
)


def header(headers: Mapping[str, str], name: str) -> str:
    """Read ``X-Shopify-<name>`` or its unprefixed Events spelling ``shopify-<name>``."""
    return headers.get(f"X-Shopify-{name}") or headers.get(f"shopify-{name.lower()}") or ""


def sign(secret: str, body: bytes) -> str:
    """The value Shopify puts in ``X-Shopify-Hmac-Sha256`` for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(secrets: Iterable[str], body: bytes, signature: str) -> bool:
    """True when ``signature`` matches ``body`` under any of the (current, previous) secrets.

    Constant-time per comparison; an empty body or signature is never valid.
    """
    if not body or not signature:
        return False
    ok = False
    for secret in secrets:
        if secret:
            ok |= hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode())
    return ok
