"""Shop lifecycle deliveries: ``app/uninstalled`` and the privacy (compliance) topics.

The installable-app issue implements what each one does; until then they are stored in the inbox
(and so answered 200 with their signature verified, as Shopify's review requires).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from jobs.runtime import Runtime
from store.models import Shop, WebhookEvent


def handle_event(runtime: Runtime, session: Session, shop: Shop, event: WebhookEvent) -> str:
    """Apply one lifecycle delivery for ``shop``; returns what happened."""
    return f"stored ({event.topic}; handled by the installable-app work)"
