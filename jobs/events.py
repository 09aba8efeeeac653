"""The inbox consumer: one job per stored delivery, carrying only the inbox row id.

It routes by the row's source: a platform delivery goes through the shop's platform adapter and
the order pipeline; a provider delivery through the provider adapter and the shipment recorder.
Running it twice is harmless: a processed row is skipped, and every step below is idempotent.
"""

from __future__ import annotations

import logging

from marshmallow import ValidationError

from integrations import fulfilment, platforms
from jobs.orders import FollowUp, apply_order_event, enqueue_follow_ups
from jobs.parties import platform_for, provider_for
from jobs.runtime import Runtime, get_runtime
from jobs.shipments import apply_provider_event
from store.db import transaction
from store.models import Shop, WebhookEvent, utcnow

log = logging.getLogger(__name__)


def process_event(event_id: int) -> str:
    """Apply one stored delivery. Returns what happened (kept as the RQ job result)."""
    runtime = get_runtime()
    follow_ups: list[FollowUp] = []
    after_commit: list[str] = []
    with transaction(runtime.sessions) as session:
        event = session.get(WebhookEvent, event_id, with_for_update=True)
        if event is None:
            return "gone"
        if event.status in ("processed", "ignored", "failed"):
            return f"already {event.status}"
        event.attempts += 1
        shop = session.get(Shop, event.shop_id) if event.shop_id else None
        if shop is None:
            return _finish(event, "ignored", "no shop for this delivery")
        if shop.status != "active":
            return _finish(event, "ignored", f"shop is {shop.status}")
        try:
            if event.source in platforms.PLATFORMS:
                outcome = _platform_event(runtime, session, shop, event, follow_ups)
            elif event.source in fulfilment.PROVIDERS:
                provider = provider_for(runtime, shop)
                parsed = provider.parse_webhook(event.headers, event.body)
                outcome = apply_provider_event(session, shop, parsed, event.id, after_commit)
            else:
                outcome = f"unknown source {event.source}"
        except (ValidationError, ValueError) as exc:
            # A payload we cannot read will not become readable by retrying: keep it, say why.
            log.warning("event %s: unreadable payload: %s", event_id, exc)
            return _finish(event, "failed", f"unreadable payload: {exc}")
        _finish(event, "processed", outcome)
    enqueue_follow_ups(runtime, follow_ups)
    _enqueue_after_commit(runtime, after_commit)
    return outcome


def _platform_event(runtime: Runtime, session, shop: Shop, event: WebhookEvent, follow_ups: list[FollowUp]) -> str:  # type: ignore[no-untyped-def]
    platform = platform_for(runtime, shop)
    kind = platform.event_kind(event.topic)
    if kind != "order":
        # Lifecycle, compliance and inventory topics are stored for the issues that handle them.
        return f"stored ({kind})"
    order_event = platform.parse_order_event(event.topic, event.body)
    follow_ups.extend(apply_order_event(session, shop, order_event, event.id))
    return "applied" + (f", {follow_ups[-1].kind} queued" if follow_ups else "")


def _enqueue_after_commit(runtime: Runtime, shipment_ids: list[str]) -> None:
    from jobs.queues import enqueue_once

    for shipment_id in shipment_ids:
        enqueue_once(
            runtime, "tracking", "jobs.tracking.write_shipment", int(shipment_id), job_id=f"tracking-{shipment_id}"
        )


def _finish(event: WebhookEvent, status: str, outcome: str) -> str:
    event.status = status
    event.error = outcome if status != "processed" else None
    event.processed_at = utcnow()
    return outcome
