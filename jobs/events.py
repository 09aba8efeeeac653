"""The inbox consumer: one job per stored delivery, carrying only the inbox row id.

It routes by the row's source: a platform delivery goes through the shop's platform adapter and
the order pipeline; a provider delivery through the provider adapter and the shipment recorder.
Running it twice is harmless: a processed row is skipped, and every step below is idempotent.
"""

from __future__ import annotations

import logging

from marshmallow import ValidationError

from config import log_context
from integrations import fulfilment, platforms
from jobs import fraud, fulfilment_service, lifecycle, push_waiters, stock
from jobs.fulfilment_requests import enqueue_sync
from jobs.orders import FollowUp, apply_order_event, enqueue_follow_ups
from jobs.parties import platform_for, provider_for
from jobs.runtime import Runtime, get_runtime
from jobs.shipments import PushInFlight, apply_provider_event
from jobs.tracking import enqueue_write, tracking_key
from store.db import transaction
from store.models import Shipment, Shop, WebhookEvent, utcnow
from store.shops import has_provider

log = logging.getLogger(__name__)


def process_event(event_id: int) -> str:
    """Apply one stored delivery. Returns what happened (kept as the RQ job result).

    A provider event for an order whose push has not landed yet raises ``PushInFlight``: RQ runs
    the job again on its retry schedule, and the push that lands first runs it at once."""
    try:
        return _process(get_runtime(), event_id)
    except PushInFlight as exc:
        push_waiters.wait(get_runtime(), exc.order_id, event_id)
        raise


def _process(runtime: Runtime, event_id: int) -> str:
    follow_ups: list[FollowUp] = []
    after_commit: list[str] = []
    fulfilment_order_ids: list[str] = []
    with transaction(runtime.sessions) as session:
        event = session.get(WebhookEvent, event_id, with_for_update=True)
        if event is None:
            return "gone"
        log_context.bind(shop_id=event.shop_id, event_id=event.id)  # JSON log lines, follow-ups' fair share
        if event.status in ("processed", "ignored", "failed"):
            return f"already {event.status}"
        shop = session.get(Shop, event.shop_id) if event.shop_id else None
        if shop is None:
            return _finish(event, "ignored", "no shop for this delivery")
        kind = _kind(event)
        # Lifecycle deliveries (uninstall, redact) must be handled whatever the shop's status:
        # shop/redact arrives 48 hours after the uninstall. Everything else stops with the shop.
        if shop.status != "active" and kind != "lifecycle":
            return _finish(event, "ignored", f"shop is {shop.status}")
        try:
            if kind == "order":
                order_event = platform_for(runtime, shop).parse_order_event(event.topic, event.body)
                follow_ups.extend(apply_order_event(session, shop, order_event, event.id))
                outcome = "applied" + (f", {follow_ups[-1].kind} queued" if follow_ups else "")
            elif kind == "lifecycle":
                outcome = lifecycle.handle_event(runtime, session, shop, event)
            elif kind == "risk":
                outcome = fraud.handle_event(runtime, session, shop, event)
            elif kind == "inventory":
                outcome = stock.handle_catalogue_event(runtime, session, shop, event)
            elif kind == "fulfilment_order":
                outcome, fulfilment_order_ids = fulfilment_service.handle_event(session, shop, event)
            elif kind == "provider" and not has_provider(shop):
                # No provider to read it with (none saved yet, or one this deployment lacks).
                return _finish(event, "ignored", "the shop has no fulfilment provider")
            elif kind == "provider":
                parsed = provider_for(runtime, shop).parse_webhook(event.headers, event.body)
                outcome = apply_provider_event(session, shop, parsed, event.id, after_commit)
            else:
                outcome = f"stored ({kind})"
        except (ValidationError, ValueError) as exc:
            # A payload we cannot read will not become readable by retrying: keep it, say why.
            log.warning("event %s: unreadable payload: %s", event_id, exc)
            return _finish(event, "failed", f"unreadable payload: {exc}")
        _finish(event, "processed", outcome)
    enqueue_follow_ups(runtime, follow_ups)
    _enqueue_after_commit(runtime, after_commit)
    for fo_id in fulfilment_order_ids:  # fulfilment-service mode: each named FO is read again
        enqueue_sync(runtime, shop.id, fo_id)
    return outcome


def _kind(event: WebhookEvent) -> str:
    """``order``, ``lifecycle``, ``inventory``, ``fulfilment_order``, ``risk``, ``provider`` or ``ignored``."""
    if event.source in fulfilment.PROVIDERS:
        return "provider"
    if event.source in platforms.PLATFORMS:
        return platforms.get(event.source).event_kind(event.topic)
    return "ignored"


def _enqueue_after_commit(runtime: Runtime, shipment_ids: list[str]) -> None:
    with runtime.sessions() as session:
        for shipment_id in shipment_ids:
            row = session.get(Shipment, int(shipment_id))
            if row is not None:
                enqueue_write(runtime, row.id, row.order_id, tracking_key(row))


def _finish(event: WebhookEvent, status: str, outcome: str) -> str:
    """One more attempt, ended with ``status``. Every run that gets past the "already done" check
    ends here or raises (and rolls back), so the attempt is counted here, with the outcome: one
    UPDATE of the inbox row per run, not one for the count (flushed by the first query after it)
    and one for the outcome."""
    event.attempts += 1
    event.status = status
    event.error = outcome if status != "processed" else None
    event.processed_at = utcnow()
    return outcome
