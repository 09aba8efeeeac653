"""The polling path for parcels whose webhook never came.

Providers that keep a "tracking uploaded" flag (ShipBob) list the shipments with tracking that
we have not acknowledged yet; ShipBob's own docs suggest this poll every 15–30 minutes as the
fallback for lost webhooks. Each one goes through the same recorder as a webhook would
(``jobs.shipments.apply_provider_event``), so a parcel seen both ways is recorded once.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from integrations import fulfilment
from integrations.errors import AuthError, RetryableError
from integrations.model import ProviderEvent
from jobs.parties import provider_for
from jobs.queues import enqueue_once
from jobs.runtime import get_runtime
from jobs.shipments import apply_provider_event
from jobs.tracking import enqueue_write, tracking_key
from store.db import transaction
from store.models import Order, Shipment, Shop
from store.shops import has_provider, provider_available

log = logging.getLogger(__name__)

POLL_INTERVAL = 15 * 60  # seconds


def poll_all() -> int:
    """Enqueue a poll for every active shop whose provider keeps a tracking-uploaded flag."""
    runtime = get_runtime()
    with runtime.sessions() as session:
        shops = session.execute(select(Shop.id, Shop.provider).where(Shop.status == "active")).all()
    count = 0
    for shop_id, provider in shops:
        if not provider_available(provider):
            continue  # no provider yet (or none this deployment has): nothing to poll
        if fulfilment.get(provider).acknowledges_tracking:
            count += enqueue_once(runtime, "tracking", "jobs.polling.poll_shipments", shop_id, job_id=f"poll-{shop_id}")
    return count


def poll_shipments(shop_id: int) -> str:
    """Record every shipped, unacknowledged parcel the provider lists for this shop's account."""
    runtime = get_runtime()
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.status != "active":
            return "shop inactive"
        if not has_provider(shop):
            return f"skipped: shop {shop_id} has no fulfilment provider yet, nothing to poll"
        provider = provider_for(runtime, shop)
    try:
        parcels = provider.unacknowledged_shipments()
    except (RetryableError, AuthError) as exc:
        log.warning("shop %s: polling %s failed: %s", shop_id, provider.name, exc)
        return f"poll failed: {exc}"
    recorded = 0
    for parcel in parcels:
        event = ProviderEvent(
            delivery_id=f"poll:{parcel.provider_shipment_id}",
            kind="shipped",
            event_time=parcel.event_time,
            shipment=parcel,
        )
        with transaction(runtime.sessions) as session:
            shop = session.get(Shop, shop_id)
            outcome = apply_provider_event(session, shop, event, None, [])  # type: ignore[arg-type]
            recorded += outcome.startswith("shipment")
    # Whatever the poll found, make sure each parcel is written to the shop and acknowledged.
    ids = [p.provider_shipment_id for p in parcels]
    with runtime.sessions() as session:
        rows = session.scalars(
            select(Shipment).join(Order).where(Order.shop_id == shop_id, Shipment.provider_shipment_id.in_(ids))
        ).all()
        for row in rows:
            if row.written_tracking != tracking_key(row):
                enqueue_write(runtime, row.id, row.order_id, tracking_key(row))
            elif row.acknowledged_at is None:
                enqueue_once(runtime, "tracking", "jobs.tracking.acknowledge", row.id, job_id=f"ack-{row.id}")
    return f"{len(parcels)} unacknowledged parcel(s), {recorded} recorded"
