"""Write a recorded parcel's tracking back to the shop, exactly once, then tell the provider.

The parcel id and the platform's fulfilment id are stored together in one transaction; a repeat
finds ``platform_fulfilment_id`` set and only updates tracking if it changed.
"""

from __future__ import annotations

import logging

from rq import Retry

from integrations.errors import AuthError, InvalidRequestError, RetryableError
from integrations.model import Shipment as ShipmentModel
from integrations.model import ShipmentLine
from jobs.parties import platform_for, provider_for
from jobs.queues import next_retry
from jobs.runtime import get_runtime
from store import orders as order_store
from store.db import transaction
from store.models import Order, Shipment, Shop, utcnow

log = logging.getLogger(__name__)


def write_shipment(shipment_id: int) -> Retry | str:
    """Send one parcel's tracking to the shop (idempotent: a written parcel is not sent again)."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        row = session.get(Shipment, shipment_id)
        if row is None:
            return "gone"
        order = session.get(Order, row.order_id)
        shop = session.get(Shop, order.shop_id) if order else None
        if order is None or shop is None or shop.status != "active":
            return "shop inactive"
        if row.platform_fulfilment_id and row.written_at:
            return "already written"
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
        platform_order_id = order.platform_order_id
        line_map = [
            {"platform_line_id": line.platform_line_id, "sku": line.sku, "quantity": line.quantity}
            for line in order.lines
        ]
        provider = provider_for(runtime, shop)
    try:
        written = platform.write_tracking(platform_order_id, parcel, line_map)
    except NotImplementedError as exc:
        return str(exc)
    except RetryableError as exc:
        retry = next_retry(runtime, exc.retry_after)
        if retry is None:
            raise  # RQ keeps it in the failed registry; the order's timeline says why below
        return retry
    except (InvalidRequestError, AuthError) as exc:
        with transaction(runtime.sessions) as session:
            order = session.get(Order, order.id)
            order_store.note(order, f"tracking {parcel.tracking_number} could not be written to the shop: {exc}")
        return "failed"
    with transaction(runtime.sessions) as session:
        row = session.get(Shipment, shipment_id, with_for_update=True)
        row.platform_fulfilment_id = written.platform_fulfilment_id
        row.written_at = utcnow()
        order = session.get(Order, row.order_id)
        order_store.note(
            order, f"tracking {row.tracking_number} written to the shop ({written.platform_fulfilment_id})"
        )
    if provider.acknowledges_tracking:
        provider.ack_shipments([parcel.provider_shipment_id])
        with transaction(runtime.sessions) as session:
            session.get(Shipment, shipment_id).acknowledged_at = utcnow()
    return "written"
