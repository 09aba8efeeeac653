"""Write a recorded parcel's tracking back to the shop, exactly once, then tell the provider.

Exactly once: the parcel id and the platform's fulfilment id are stored together in one
transaction; the platform adapter first looks for a fulfilment already carrying the tracking
number, so a job whose answer was lost finds what it wrote. Jobs for one order run one at a time
(RQ ``RateLimit`` keyed by the order), so two parcels or a correction never race each other. A
later correction from the provider (another number, carrier or URL) is sent as an update of the
same fulfilment, never as a second one.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter

from rq import Retry
from rq.rate_limit import RateLimit

from integrations.carriers import resolve
from integrations.errors import AuthError, ConfigError, InvalidRequestError, RetryableError
from integrations.model import Shipment as ShipmentModel
from integrations.model import ShipmentLine
from jobs.parties import platform_for, provider_for
from jobs.queues import enqueue_once, next_retry
from jobs.runtime import Runtime, get_runtime
from jobs.shipments import update_order_state
from store import orders as order_store
from store.db import transaction
from store.models import Order, Shipment, Shop, utcnow
from store.shops import has_provider

log = logging.getLogger(__name__)


def tracking_key(row: Shipment) -> str:
    """What identifies the tracking the shop should show: number, carrier and URL."""
    return "|".join((row.tracking_number or "", row.carrier or "", row.tracking_url or ""))


def enqueue_write(runtime: Runtime, shipment_id: int, order_id: int, key: str) -> bool:
    """One job per (parcel, tracking version); at most one running per order. True if enqueued now."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return enqueue_once(
        runtime,
        "tracking",
        "jobs.tracking.write_shipment",
        shipment_id,
        job_id=f"tracking-{shipment_id}-{digest}",
        rate_limit=RateLimit(f"relais:order-tracking:{order_id}", 1),
    )


def write_shipment(shipment_id: int) -> Retry | str:
    """Send one parcel's tracking to the shop: create its fulfilment, or correct it."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        row = session.get(Shipment, shipment_id)
        order = session.get(Order, row.order_id) if row else None
        shop = session.get(Shop, order.shop_id) if order else None
        if row is None or order is None or shop is None:
            return "gone"
        if shop.status != "active":
            return "shop inactive"
        key = tracking_key(row)
        if row.platform_fulfilment_id and row.written_tracking == key:
            return "already written"
        if row.status == "cancelled" or not row.tracking_number:
            return "nothing to write"
        platform = platform_for(runtime, shop)
        parcel = ShipmentModel(
            provider_shipment_id=row.provider_shipment_id,
            reference=order.provider_reference or "",
            status=row.status,
            carrier=row.carrier,
            service=row.service,
            tracking_number=row.tracking_number,
            tracking_url=row.tracking_url,
            lines=tuple(ShipmentLine(sku=line["sku"], quantity=int(line["quantity"])) for line in row.lines or []),
        )
        existing_id = row.platform_fulfilment_id
        order_id, platform_order_id = order.id, order.platform_order_id
        lines = [
            {"platform_line_id": line.platform_line_id, "sku": line.sku, "quantity": line.quantity}
            for line in order.lines
            if line.requires_shipping
        ]
        # A shop whose provider this deployment lacks (none yet, or the sandbox in production) still
        # gets its tracking written; there is simply no provider to tell.
        acknowledges = has_provider(shop) and provider_for(runtime, shop).acknowledges_tracking
    try:
        if existing_id:
            written = platform.update_tracking(platform_order_id, existing_id, parcel)
        else:
            written = platform.write_tracking(platform_order_id, parcel, lines)
    except NotImplementedError as exc:
        return str(exc)
    except RetryableError as exc:
        retry = next_retry(runtime, exc.retry_after)
        if retry is None:
            _note(runtime, order_id, f"tracking {parcel.tracking_number} not written after every retry: {exc}")
            return "failed"
        return retry
    except (InvalidRequestError, AuthError, ConfigError) as exc:
        _note(runtime, order_id, f"tracking {parcel.tracking_number} could not be written to the shop: {exc}")
        return "failed"
    with transaction(runtime.sessions) as session:
        row = session.get(Shipment, shipment_id, with_for_update=True)
        order = session.get(Order, order_id)
        row.platform_fulfilment_id = written.platform_fulfilment_id
        row.written_at = utcnow()
        row.written_tracking = key
        unplaced = Counter({line.sku: line.quantity for line in getattr(written, "unplaced", ())})
        if not existing_id:
            row.written_lines = _minus(row.lines or [], unplaced)
        if unplaced:
            order_store.note(order, f"not on the shop at our location, so not in its fulfilment: {dict(unplaced)}")
        verb = "corrected on" if existing_id else ("written to" if written.created else "found already on")
        order_store.note(order, f"tracking {row.tracking_number} {verb} the shop ({written.platform_fulfilment_id})")
        carrier = resolve(row.carrier, row.tracking_number, row.tracking_url)
        if carrier.guessed:
            order_store.note(order, f"carrier {carrier.company} guessed from the format of {row.tracking_number}")
        session.flush()
        update_order_state(order, f"tracking of parcel {row.provider_shipment_id} written to the shop")
    if acknowledges:
        enqueue_once(runtime, "tracking", "jobs.tracking.acknowledge", shipment_id, job_id=f"ack-{shipment_id}")
    return "written"


def acknowledge(shipment_id: int) -> Retry | str:
    """Tell the provider the parcel's tracking reached the shop (ShipBob's tracking-uploaded flag)."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        row = session.get(Shipment, shipment_id)
        order = session.get(Order, row.order_id) if row else None
        shop = session.get(Shop, order.shop_id) if order else None
        if row is None or shop is None or row.acknowledged_at is not None:
            return "nothing to do"
        if not has_provider(shop):
            return f"nothing to do: shop {shop.id} has no fulfilment provider"
        provider = provider_for(runtime, shop)
        provider_shipment_id = row.provider_shipment_id
    try:
        provider.ack_shipments([provider_shipment_id])
    except RetryableError as exc:
        retry = next_retry(runtime, exc.retry_after)
        return retry if retry is not None else "failed"
    with transaction(runtime.sessions) as session:
        row = session.get(Shipment, shipment_id)
        row.acknowledged_at = utcnow()
        order_store.note(
            session.get(Order, row.order_id), f"{provider.name} told parcel {provider_shipment_id} is on the shop"
        )
    return "acknowledged"


def _minus(lines: list[dict[str, object]], unplaced: Counter[str]) -> list[dict[str, object]]:
    """The parcel's lines less the units the shop could not place."""
    left = Counter(unplaced)
    kept = []
    for line in lines:
        quantity = int(line["quantity"])  # type: ignore[call-overload]
        drop = min(quantity, left[str(line["sku"])])
        left[str(line["sku"])] -= drop
        if quantity - drop > 0:
            kept.append({"sku": line["sku"], "quantity": quantity - drop})
    return kept


def _note(runtime: Runtime, order_id: int, text: str) -> None:
    with transaction(runtime.sessions) as session:
        order = session.get(Order, order_id)
        if order is not None:
            order_store.note(order, text)
