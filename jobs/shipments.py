"""Provider shipment events → shipment rows and the order's shipping state.

Events may arrive out of order and more than once: a shipment keeps the event time it was last
updated from, and an older event changes nothing. The order's state is derived from its
shipments (all shippable units in parcels: shipped; some: partially shipped; all parcels
delivered: delivered), never from the topic alone.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.fulfilment.reference import parse_reference
from integrations.model import ProviderEvent
from jobs import states
from store import orders as order_store
from store.models import Order, Shipment, Shop

# How far each shipment status is along; a lower one never overwrites a higher one.
STATUS_RANK = {"on_hold": 0, "exception": 0, "shipped": 1, "in_transit": 2, "delivered": 3, "cancelled": 4}
KIND_TO_STATUS = {
    "shipped": "shipped",
    "tracking_updated": "in_transit",
    "delivered": "delivered",
    "cancelled": "cancelled",
    "on_hold": "on_hold",
    "exception": "exception",
}


def find_order_for(session: Session, shop: Shop, reference: str) -> Order | None:
    row = session.execute(
        select(Order).where(Order.shop_id == shop.id, Order.provider_reference == reference).with_for_update()
    ).scalar_one_or_none()
    if row is not None:
        return row
    parsed = parse_reference(reference)
    if parsed is None or parsed[0] != shop.id:
        return None
    return order_store.find(session, shop.id, parsed[1], lock=True)


def apply_provider_event(
    session: Session, shop: Shop, event: ProviderEvent, event_id: int, tracking_jobs: list[str]
) -> str:
    """Record one provider event; appends shipment ids whose tracking must go to the shop."""
    parcel = event.shipment
    if parcel is None:
        return f"no shipment in {event.kind} event"
    order = find_order_for(session, shop, parcel.reference)
    if order is None:
        return f"no order for reference {parcel.reference!r}"
    row = next((s for s in order.shipments if s.provider_shipment_id == parcel.provider_shipment_id), None)
    event_time = order_store.as_utc(event.event_time)
    if row is not None and row.event_time and event_time and event_time < order_store.as_utc(row.event_time):
        order_store.note(order, f"ignored {event.kind} of {event_time.isoformat()}: older than the last one", event_id)
        return "stale"
    status = KIND_TO_STATUS.get(event.kind, parcel.status)
    if row is None:
        row = Shipment(provider_shipment_id=parcel.provider_shipment_id, status=status)
        order.shipments.append(row)
    elif STATUS_RANK.get(status, 0) < STATUS_RANK.get(row.status, 0) and event.kind != "tracking_updated":
        return f"shipment already {row.status}"
    tracking_changed = bool(parcel.tracking_number) and parcel.tracking_number != row.tracking_number
    row.status = status if STATUS_RANK.get(status, 0) >= STATUS_RANK.get(row.status, 0) else row.status
    row.carrier = parcel.carrier or row.carrier
    row.service = parcel.service or row.service
    row.tracking_number = parcel.tracking_number or row.tracking_number
    row.tracking_url = parcel.tracking_url or row.tracking_url
    if parcel.lines:
        row.lines = [{"sku": line.sku, "quantity": line.quantity} for line in parcel.lines]
    row.event_time = event_time or row.event_time
    session.flush()
    if event.kind in ("on_hold", "exception"):
        order_store.note(
            order, f"provider reports shipment {row.provider_shipment_id} {event.kind}: {parcel.message}", event_id
        )
    _update_order_state(order, event_id)
    if tracking_changed and row.status != "cancelled":
        tracking_jobs.append(str(row.id))
    return f"shipment {row.provider_shipment_id} {row.status}"


def _update_order_state(order: Order, event_id: int) -> None:
    if order.state in (states.CANCELLED, states.FAILED):
        return
    live = [s for s in order.shipments if s.status != "cancelled"]
    if not live:
        return
    needed = Counter()
    for line in order.lines:
        if line.requires_shipping and line.quantity > 0:
            needed[line.sku] += line.quantity
    sent = Counter()
    for shipment in live:
        for line in shipment.lines or []:
            sent[line["sku"]] += int(line["quantity"])
    complete = all(sent[sku] >= qty for sku, qty in needed.items())
    if complete and all(s.status == "delivered" for s in live):
        target = states.DELIVERED
    elif complete:
        target = states.SHIPPED
    else:
        target = states.PARTIALLY_SHIPPED
    rank = [states.PUSHED, states.PARTIALLY_SHIPPED, states.SHIPPED, states.DELIVERED]
    if order.state in rank and rank.index(target) <= rank.index(order.state):
        return
    if order.state in states.CANCEL_STATES:
        order_store.note(order, f"provider shipped while the order is {order.state}", event_id)
        return
    n = len(live)
    order_store.transition(order, target, f"{n} parcel{'s' if n != 1 else ''} reported by the provider", event_id)
