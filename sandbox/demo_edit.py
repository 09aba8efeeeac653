"""The demo's order edit: the first order's customer corrects the street after it reached the
sandbox 3PL, and the corrected address is applied there before the parcel leaves.

Shopify sends ``orders/updated`` with the whole order after an edit; the demo sends the same
order with the new street and a later ``updated_at``, signed like every demo delivery.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import requests

from config import Settings
from integrations.shopify.webhooks import sign


def corrected(payload: dict[str, Any]) -> dict[str, Any]:
    """The same order, its street corrected (the customer's typo: a missing building number)."""
    edited = copy.deepcopy(payload)
    address = edited["shipping_address"]
    address["address1"] = f"{address['address1']}, bâtiment B"
    edited["updated_at"] = datetime.now(UTC).isoformat()
    return edited


def send_correction(base: str, settings: Settings, shop_domain: str, payload: dict[str, Any]) -> int:
    """POST the corrected order as a signed ``orders/updated``; returns the HTTP status."""
    body = json.dumps(corrected(payload)).replace("/", "\\/").encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/updated",
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-API-Version": settings.shopify_api_version,
        "X-Shopify-Hmac-Sha256": sign(settings.shopify_api_secret, body),
    }
    return requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code
