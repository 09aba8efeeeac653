"""Provider shipment events → shipment rows and the order's shipping state.

Events may arrive out of order and more than once: a shipment keeps the event time it was last
updated from, and an older event changes nothing. The order's state is derived from its
shipments (all shippable units in parcels: shipped; some: partially shipped; all parcels
delivered: delivered), never from the topic alone.

An event counts only for the order it was made for: the receiver checked that the shop's own
provider secret signed it, and here its provider order id must be the one the push stored for
the order (``Order.provider_order_id``). An order never sent to the provider (held, received,
ready, failed before the push) is never shipped by an event. Anything else is ignored, and the
order's timeline says why.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations import model
from integrations.fulfilment.base import KIND_STATUS
from integrations.fulfilment.reference import parse_reference
from integrations.model import ProviderEvent
from jobs import states
from store import orders as order_store
from store.fulfilment_orders import units_sent
from store.models import Order, Shipment, Shop

# How far each shipment status is along; a lower one never overwrites a higher one.
STATUS_RANK = {"on_hold": 0, "exception": 0, "shipped": 1, "in_transit": 2, "delivered": 3, "cancelled": 4}


class PushInFlight(RuntimeError):
    """The event is for an order whose push has not recorded the provider's order id yet: the
    event job fails and RQ runs it again later, rather than dropping a genuine parcel; the push
    that lands first moves it forward (``jobs.push_waiters``)."""

    def __init__(self, message: str, order_id: int) -> None:
        super().__init__(message)
        self.order_id = order_id


def find_order_for(session: Session, shop: Shop, reference: str, provider_order_id: str = "") -> Order | None:
    """The shop's order an event names: by our reference, else (an event naming none) by the
    provider's order id stored at push. Only this shop's orders are ever looked at."""
    if not reference:
        if not provider_order_id:
            return None
        return session.execute(
            select(Order)
            .where(Order.shop_id == shop.id, Order.provider_order_id == provider_order_id)
            .order_by(Order.id.desc())
            .limit(1)
            .with_for_update()
        ).scalar_one_or_none()
    row = session.execute(
        select(Order).where(Order.shop_id == shop.id, Order.provider_reference == reference).with_for_update()
    ).scalar_one_or_none()
    if row is not None:
        return row
    parsed = parse_reference(reference)
    if parsed is None or parsed[0] != shop.id:
        return None
    return order_store.find(session, shop.id, parsed[1], lock=True)


def binding_problem(order: Order, shop: Shop, parcel: model.Shipment) -> str:
    """Why this parcel is not the order's (the provider order it names is not the one the order
    was sent as), or "" when it is. Raises ``PushInFlight`` while the push is still recording."""
    if order.provider_order_id is None:
        if order.state == states.PUSHING:
            waiting = f"order {order.id} is being sent to {shop.provider}; the event waits for its id"
            raise PushInFlight(waiting, order.id)
        return f"this order was never sent to {shop.provider} (it is {order.state})"
    if order.provider and order.provider != shop.provider:
        return f"this order was sent to {order.provider}, not {shop.provider}"
    if not parcel.provider_order_id:
        return f"it names no {shop.provider} order (this order was sent as {order.provider_order_id})"
    if parcel.provider_order_id != order.provider_order_id:
        return (
            f"provider order {parcel.provider_order_id} is not the one this order was sent as "
            f"({order.provider_order_id})"
        )
    return ""


def apply_provider_event(
    session: Session, shop: Shop, event: ProviderEvent, event_id: int, tracking_jobs: list[str]
) -> str:
    """Record one provider event; appends shipment ids whose tracking must go to the shop."""
    parcel = event.shipment
    if parcel is None:
        return f"no shipment in {event.kind} event"
    order = find_order_for(session, shop, parcel.reference, parcel.provider_order_id)
    if order is None:
        return f"no order for reference {parcel.reference!r}"
    problem = binding_problem(order, shop, parcel)
    if problem:
        reason = f"ignored {event.kind} event for parcel {parcel.provider_shipment_id}: {problem}"
        order_store.note(order, reason, event_id)
        return reason
    row = next((s for s in order.shipments if s.provider_shipment_id == parcel.provider_shipment_id), None)
    event_time = order_store.as_utc(event.event_time)
    if row is not None and row.event_time and event_time and event_time < order_store.as_utc(row.event_time):
        order_store.note(order, f"ignored {event.kind} of {event_time.isoformat()}: older than the last one", event_id)
        return "stale"
    status = KIND_STATUS.get(event.kind, parcel.status)
    if row is None:
        row = Shipment(provider_shipment_id=parcel.provider_shipment_id, status=status)
        order.shipments.append(row)
    elif STATUS_RANK.get(status, 0) < STATUS_RANK.get(row.status, 0) and event.kind != "tracking_updated":
        return f"shipment already {row.status}"
    before = (row.tracking_number, row.carrier, row.tracking_url)
    row.status = status if STATUS_RANK.get(status, 0) >= STATUS_RANK.get(row.status, 0) else row.status
    row.carrier = parcel.carrier or row.carrier
    row.service = parcel.service or row.service
    row.tracking_number = parcel.tracking_number or row.tracking_number
    row.tracking_url = parcel.tracking_url or row.tracking_url
    if parcel.lines:
        row.lines = [{"sku": line.sku, "quantity": line.quantity} for line in parcel.lines]
    row.event_time = event_time or row.event_time
    session.flush()
    tracking_changed = bool(row.tracking_number) and (row.tracking_number, row.carrier, row.tracking_url) != before
    if event.kind in ("on_hold", "exception"):
        order_store.note(
            order, f"provider reports shipment {row.provider_shipment_id} {event.kind}: {parcel.message}", event_id
        )
    elif tracking_changed:
        order_store.note(
            order,
            f"parcel {row.provider_shipment_id} shipped by the provider: {row.carrier} {row.tracking_number}",
            event_id,
        )
    update_order_state(order, f"provider reports parcel {row.provider_shipment_id} {row.status}", event_id)
    if tracking_changed and row.status != "cancelled":
        tracking_jobs.append(str(row.id))
    return f"shipment {row.provider_shipment_id} {row.status}"


def shipping_state(order: Order) -> str | None:
    """The order's shipping state from its parcels, or None while none has reached the shop.

    A parcel counts once its tracking is written back to the shop: ``shipped`` when written
    parcels hold every shippable unit, ``partially_shipped`` before that, ``delivered`` when,
    on top, the provider reports every one of them delivered.
    """
    needed: Counter[str] = units_sent(order) or Counter()  # service mode: our fulfilment orders' units
    for line in order.lines if not needed else ():
        if line.requires_shipping and line.quantity > 0:
            needed[line.sku] += line.quantity
    written = [s for s in order.shipments if s.status != "cancelled" and s.written_at is not None]
    if not written:
        return None
    sent: Counter[str] = Counter()
    for shipment in written:
        for line in shipment.written_lines if shipment.written_lines is not None else shipment.lines or []:
            sent[line["sku"]] += int(line["quantity"])
    complete = all(sent[sku] >= qty for sku, qty in needed.items())
    if complete and all(s.status == "delivered" for s in written):
        return states.DELIVERED
    return states.SHIPPED if complete else states.PARTIALLY_SHIPPED


def update_order_state(order: Order, reason: str, event_id: int | None = None) -> None:
    """Move the order forward to what its parcels say (never backward, never out of a cancel)."""
    target = shipping_state(order)
    if target is None or order.state in (states.CANCELLED, states.FAILED):
        return
    rank = [states.PUSHED, states.PARTIALLY_SHIPPED, states.SHIPPED, states.DELIVERED]
    if order.state in rank and rank.index(target) <= rank.index(order.state):
        return
    if order.state in states.CANCEL_STATES:
        order_store.note(order, f"{reason} while the order is {order.state}", event_id)
        return
    order_store.transition(order, target, reason, event_id)
