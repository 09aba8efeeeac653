"""Order rows ↔ the neutral model, transitions, and the order queries the jobs need."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, object_session

from integrations import model
from store.db import lock_for_write
from store.models import FulfilmentAttempt, Order, OrderLine, OrderTransition, utcnow


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every comparison in Relais is between aware UTC ones."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def transition(order: Order, to_state: str, reason: str = "", event_id: int | None = None) -> None:
    """Move ``order`` to ``to_state`` and record the change (same transaction as the outcome).

    The history row is attached through its many-to-one side, so adding a line never loads the
    order's whole history.
    """
    persistent = inspect(order).persistent
    if persistent and order.state == to_state:
        return
    from_state = order.state if persistent else None
    _add(
        order, OrderTransition(order=order, from_state=from_state, to_state=to_state, reason=reason, event_id=event_id)
    )
    order.state = to_state
    order.updated_at = utcnow()


def note(order: Order, reason: str, event_id: int | None = None) -> None:
    """Record something that happened without a state change (shown on the timeline)."""
    _add(
        order,
        OrderTransition(order=order, from_state=order.state, to_state=order.state, reason=reason, event_id=event_id),
    )


def attempt(order: Order, **fields: object) -> None:
    """Record one provider call about the order (without loading the earlier ones)."""
    _add(order, FulfilmentAttempt(order=order, **fields))


def _add(order: Order, child: object) -> None:
    # SQLAlchemy 2 no longer cascades a backref assignment into the session: add it explicitly.
    session = object_session(order)
    if session is not None:
        session.add(child)


def get_for_update(session: Session, order_id: int) -> Order | None:
    """The order row, locked until commit (on SQLite: the whole database, see ``lock_for_write``)."""
    lock_for_write(session)
    return session.execute(select(Order).where(Order.id == order_id).with_for_update()).scalar_one_or_none()


def find(session: Session, shop_id: int, platform_order_id: str, lock: bool = False) -> Order | None:
    stmt = select(Order).where(Order.shop_id == shop_id, Order.platform_order_id == platform_order_id)
    if lock:
        lock_for_write(session)
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def apply_model(row: Order, order: model.Order) -> None:
    """Copy a newer platform view of the order onto its row (lines replaced as a whole)."""
    row.name = order.name
    row.paid = order.paid
    row.cancelled = order.cancelled
    row.platform_updated_at = as_utc(order.updated_at)
    row.ship_to = asdict(order.ship_to) if order.ship_to else None
    row.shipping_method = order.shipping_method
    row.contact = asdict(order.contact)
    row.tags = list(order.tags)
    existing = {line.platform_line_id: line for line in row.lines}
    keep: list[OrderLine] = []
    for line in order.lines:
        target = existing.get(line.platform_line_id) or OrderLine(platform_line_id=line.platform_line_id)
        target.sku = line.sku
        target.name = line.name
        target.quantity = line.quantity
        target.requires_shipping = line.requires_shipping
        keep.append(target)
    row.lines[:] = keep


def to_model(row: Order) -> model.Order:
    """The neutral order a provider request is built from."""
    ship_to = model.Address(**row.ship_to) if row.ship_to else None
    contact = model.Contact(**(row.contact or {}))
    return model.Order(
        platform_order_id=row.platform_order_id,
        name=row.name,
        paid=row.paid,
        cancelled=row.cancelled,
        updated_at=as_utc(row.platform_updated_at) or utcnow(),
        lines=tuple(
            model.Line(
                platform_line_id=line.platform_line_id,
                sku=line.sku,
                quantity=line.quantity,
                requires_shipping=line.requires_shipping,
                name=line.name,
            )
            for line in row.lines
        ),
        ship_to=ship_to,
        shipping_method=row.shipping_method,
        contact=contact,
        tags=tuple(row.tags or ()),
    )
