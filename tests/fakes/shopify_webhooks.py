"""Shopify webhook deliveries as Shopify sends them: raw JSON bytes, base64 HMAC, headers."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from integrations.shopify.webhooks import sign

SAMPLES = Path(__file__).resolve().parents[2] / "vendor" / "samples" / "shopify"


def sample_order(**changes: Any) -> dict[str, Any]:
    """Shopify's own order sample (2026-07 REST reference), as a webhook body, with changes."""
    data = json.loads((SAMPLES / "order_450789469_rest_2026-07.json").read_text())
    order = copy.deepcopy(data.get("order", data))
    order.update(changes)
    return order


def paid_order(order_id: int = 820982911946154508, *, minutes: int = 0, **changes: Any) -> dict[str, Any]:
    """A paid two-line order (big id, as real ones are) updated ``minutes`` after a fixed time."""
    base = sample_order()
    lines = base["line_items"]
    lines[0].update(sku="IPOD2008GREEN", quantity=2, current_quantity=2, requires_shipping=True)
    lines[1].update(sku="IPOD2008RED", quantity=1, current_quantity=1, requires_shipping=True)
    lines[2].update(sku="GIFT-CARD", quantity=1, current_quantity=1, requires_shipping=False, gift_card=True)
    updated = datetime(2026, 11, 20, 10, 0, tzinfo=UTC) + timedelta(minutes=minutes)
    base.update(
        id=order_id,
        name="#1001",
        financial_status="paid",
        cancelled_at=None,
        updated_at=updated.isoformat(),
        created_at=datetime(2026, 11, 20, 9, 59, tzinfo=UTC).isoformat(),
    )
    base.update(changes)
    return base


def body_of(payload: dict[str, Any]) -> bytes:
    # Shopify escapes "/" in its bodies; signatures must hold over those exact bytes.
    return json.dumps(payload).replace("/", "\\/").encode()


def headers_for(shop: str, topic: str, body: bytes, secret: str, webhook_id: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Hmac-Sha256": sign(secret, body),
    }
