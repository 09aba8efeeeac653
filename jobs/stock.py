"""Stock sync (the stock issue implements it): catalogue deliveries refresh the SKU map."""

from __future__ import annotations

from sqlalchemy.orm import Session

from jobs.runtime import Runtime
from store.models import Shop, WebhookEvent


def handle_catalogue_event(runtime: Runtime, session: Session, shop: Shop, event: WebhookEvent) -> str:
    """Apply a product / inventory-item delivery to the shop's SKU map; returns what happened."""
    return f"stored ({event.topic}; handled by the stock sync work)"
