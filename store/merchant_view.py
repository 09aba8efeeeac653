"""What the merchant's view shows, read in a few queries: orders needing attention, each recent
order's timeline, the health of webhooks and of the provider. Read-only; plain dicts for Jinja."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from integrations.carriers import resolve
from jobs import states
from jobs.decide import WAITING_FOR_PROVIDER, is_waiting_for_provider
from store.edit_models import OrderEdit
from store.models import FulfilmentAttempt, Order, OrderLine, OrderTransition, Shipment, WebhookEvent, utcnow
from store.orders import as_utc

ATTENTION_STATES = (states.FAILED, states.HELD, states.CANCEL_TOO_LATE, states.PARTIALLY_CANCELLED)
# Where a line without a SKU stops the order (the provider cannot pick what it cannot name).
BEFORE_PROVIDER = (states.RECEIVED, states.HELD, states.READY, states.FAILED)


@dataclass
class Step:
    key: str  # received | held | failed | pushed | shipped | tracking | delivered | a cancel state
    at: datetime | None
    status: str  # done | problem | todo

    @property
    def label(self) -> str:
        """The English label (the page shows its translation of ``key``)."""
        return STEP_LABELS.get(self.key, self.key.replace("_", " ").capitalize())


STEP_LABELS = {
    "received": "Received",
    "held": "Held",
    "failed": "Failed",
    "pushed": "Pushed",
    "shipped": "Shipped",
    "tracking": "Tracking written",
    "delivered": "Delivered",
}


@dataclass
class Parcel:
    carrier: str
    tracking_number: str
    tracking_url: str
    status: str
    at: datetime | None
    written: bool


@dataclass
class OrderView:
    id: int
    name: str
    platform_order_id: str
    state: str
    reason: str
    updated_at: datetime | None
    steps: list[Step] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    category: str = ""
    actions: tuple[str, ...] = ()
    parcels: list[Parcel] = field(default_factory=list)
    customer: dict[str, str] = field(default_factory=dict)


def held_reason(row: Order) -> str:
    """Why the order last went to ``held``: its latest transition into it (notes after it, such as
    an ignored stale update, aside). Also how the pipeline finds orders waiting for a provider."""
    for t in reversed(row.history):
        if t.to_state == states.HELD and t.from_state != states.HELD:
            return t.reason or ""
    return ""


def _actions(state: str, waiting: bool = False) -> tuple[str, ...]:
    if state == states.FAILED:
        return ("retry",)
    if state == states.HELD:
        # Waiting for a provider: saving one releases it; a release button could not send it anywhere.
        return () if waiting else ("release",)
    if state in states.AT_PROVIDER:
        return ("cancel",)
    return ()


def _steps(row: Order) -> list[Step]:
    reached: dict[str, datetime] = {}
    for t in row.history:
        reached.setdefault(t.to_state, as_utc(t.at))  # type: ignore[arg-type]
    held = reached.get(states.HELD)
    pushed = reached.get(states.PUSHED)
    delivered = reached.get(states.DELIVERED)
    shipped = reached.get(states.SHIPPED) or reached.get(states.PARTIALLY_SHIPPED) or delivered
    written = [as_utc(s.written_at) for s in row.shipments if s.written_at]
    steps = [Step("received", reached.get(states.RECEIVED), "done")]
    if held:
        steps.append(Step("held", held, "problem" if row.state == states.HELD else "done"))
    failed = row.state == states.FAILED
    steps.append(Step("failed" if failed and not pushed else "pushed", pushed, "problem" if failed else _done(pushed)))
    steps.append(Step("shipped", shipped, _done(shipped)))
    steps.append(Step("tracking", min(written) if written else None, _done(written)))  # type: ignore[type-var]
    if row.state in states.CANCEL_STATES:
        steps.append(Step(row.state, as_utc(row.updated_at), "problem"))
    else:
        steps.append(Step("delivered", delivered, _done(delivered)))
    return steps


def _done(value: object) -> str:
    return "done" if value else "todo"


def _view(row: Order, category: str = "", full: bool = False) -> OrderView:
    last = row.history[-1] if row.history else None
    reason = row.failure_reason or (last.reason if last else "")
    held_for = held_reason(row) if row.state == states.HELD else ""
    waiting = is_waiting_for_provider(held_for)
    if waiting:
        category = WAITING_FOR_PROVIDER
        reason = f"{WAITING_FOR_PROVIDER}: choose yours under Fulfilment provider; it is sent once saved and tested"
    elif held_for:
        reason = held_for
    return OrderView(
        id=row.id,
        name=row.name or row.platform_order_id,
        platform_order_id=row.platform_order_id,
        state=row.state,
        reason=reason,
        updated_at=as_utc(row.updated_at),
        steps=_steps(row),
        history=[
            {"at": as_utc(t.at), "to": t.to_state, "reason": t.reason}
            for t in (row.history if full else row.history[-12:])  # the list: the latest dozen
        ],
        category=category,
        actions=_actions(row.state, waiting),
        parcels=[_parcel(s) for s in row.shipments],
        customer=customer(row),
    )


def _parcel(row: Shipment) -> Parcel:
    """A parcel as the merchant sees it; its tracking page is the provider's, else the carrier's."""
    url = row.tracking_url or (resolve(row.carrier, row.tracking_number).url if row.tracking_number else "")
    return Parcel(
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        tracking_url=url if url.startswith(("https://", "http://")) else "",
        status=row.status,
        at=as_utc(row.event_time or row.created_at),
        written=row.written_at is not None,
    )


def customer(row: Order) -> dict[str, str]:
    """Who ordered and where it goes, as the shop gave it (blank or "[redacted]" once redacted)."""
    ship_to, contact = row.ship_to or {}, row.contact or {}
    street = ", ".join(str(ship_to.get(k) or "") for k in ("address1", "address2") if ship_to.get(k))
    town = " ".join(str(ship_to.get(k) or "") for k in ("zip", "city") if ship_to.get(k))
    return {
        "name": str(ship_to.get("name") or ""),
        "company": str(ship_to.get("company") or ""),
        "email": str(contact.get("email") or ""),
        "phone": str(contact.get("phone") or ship_to.get("phone") or ""),
        "street": street,
        "town": town,
        "province": str(ship_to.get("province_code") or ""),
        "country": str(ship_to.get("country_code") or ship_to.get("country") or ""),
        "shipping_method": row.shipping_method or "",
    }


def _load(session: Session, *conditions: Any, limit: int) -> list[Order]:
    stmt = (
        select(Order)
        .where(*conditions)
        .options(selectinload(Order.history), selectinload(Order.shipments), selectinload(Order.lines))
        .order_by(Order.updated_at.desc(), Order.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def attention(session: Session, shop_id: int, limit: int = 50) -> list[OrderView]:
    """Failed (with the provider's reason), held, cancel too late, and orders with a line that has
    no SKU before they reach the provider."""
    no_sku = (
        select(OrderLine.order_id)
        .where(OrderLine.requires_shipping.is_(True), OrderLine.quantity > 0, func.trim(OrderLine.sku) == "")
        .scalar_subquery()
    )
    edits = held_edits(session, shop_id)  # an edit after push not applied, while the order is still out
    rows = _load(
        session,
        Order.shop_id == shop_id,
        or_(
            Order.state.in_(ATTENTION_STATES),
            Order.id.in_(no_sku) & Order.state.in_(BEFORE_PROVIDER),
            Order.id.in_(list(edits)) & Order.state.in_(states.AT_PROVIDER),
        ),
        limit=limit,
    )
    views = []
    for row in rows:
        blank = any(li.requires_shipping and li.quantity > 0 and not li.sku.strip() for li in row.lines)
        view = _view(row, row.state.replace("_", " "))
        if row.id in edits and row.state in states.AT_PROVIDER:
            view.category, view.reason = "edit not applied", f"edit not applied: {edits[row.id]}"
        if blank and view.category != WAITING_FOR_PROVIDER and row.state in BEFORE_PROVIDER:
            view.category = "unknown SKU"
            view.reason = "a line to ship has no SKU, so the provider cannot pick it: add the SKU on the shop"
        views.append(view)
    return views


def held_edits(session: Session, shop_id: int) -> dict[int, str]:
    """Order id → why its latest edit after push was held (``jobs.edits``), for the shop's orders."""
    latest = (
        select(func.max(OrderEdit.id))
        .join(Order, Order.id == OrderEdit.order_id)
        .where(Order.shop_id == shop_id)
        .group_by(OrderEdit.order_id)
    )
    rows = session.execute(
        select(OrderEdit.order_id, OrderEdit.reason).where(OrderEdit.id.in_(latest), OrderEdit.status == "held")
    ).all()
    return {order_id: reason for order_id, reason in rows}


def waiting_for_provider(session: Session, shop_id: int) -> int:
    """How many of the shop's orders are held waiting for a provider (the page's banner)."""
    into_held = (
        select(func.max(OrderTransition.id))
        .join(Order, Order.id == OrderTransition.order_id)
        .where(
            Order.shop_id == shop_id,
            Order.state == states.HELD,
            OrderTransition.to_state == states.HELD,
            or_(OrderTransition.from_state.is_(None), OrderTransition.from_state != states.HELD),
        )
        .group_by(OrderTransition.order_id)
    )
    return (
        session.scalar(
            select(func.count())
            .select_from(OrderTransition)
            .where(OrderTransition.id.in_(into_held), OrderTransition.reason.startswith(WAITING_FOR_PROVIDER))
        )
        or 0
    )


def recent_orders(session: Session, shop_id: int, limit: int = 20) -> list[OrderView]:
    return [_view(row) for row in _load(session, Order.shop_id == shop_id, limit=limit)]


def orders_by_id(session: Session, shop_id: int, ids: list[int]) -> list[OrderView]:
    """The shop's orders among ``ids`` (a search's answer), most recently changed first."""
    if not ids:
        return []
    return [_view(row) for row in _load(session, Order.shop_id == shop_id, Order.id.in_(ids), limit=len(ids))]


@dataclass
class OrderDetail:
    view: OrderView
    lines: list[dict[str, Any]]
    provider: str
    provider_order_id: str
    platform_order_id: str
    created_at: datetime | None
    attempts: list[dict[str, Any]]


def order_detail(session: Session, shop_id: int, order_id: int) -> OrderDetail | None:
    """One of the shop's orders in full, or None when ``order_id`` is not this shop's."""
    rows = _load(session, Order.shop_id == shop_id, Order.id == order_id, limit=1)
    if not rows:
        return None
    row = rows[0]
    view = _view(row, full=True)
    if row.state in ATTENTION_STATES and not view.category:
        view.category = row.state.replace("_", " ")
    return OrderDetail(
        view=view,
        lines=[
            {"sku": li.sku, "name": li.name, "quantity": li.quantity, "ships": li.requires_shipping} for li in row.lines
        ],
        provider=row.provider or "",
        provider_order_id=row.provider_order_id or "",
        platform_order_id=row.platform_order_id,
        created_at=as_utc(row.created_at),
        attempts=[{"action": a.action, "outcome": a.outcome, "at": as_utc(a.at)} for a in row.attempts[-10:]],
    )


def webhook_health(session: Session, shop_id: int, echoes: int = 0) -> dict[str, Any]:
    """Deliveries of the last 24 h by outcome; ``echoes``: our own writes dropped on arrival."""
    since = utcnow() - timedelta(hours=24)
    counts = dict(
        session.execute(
            select(WebhookEvent.status, func.count())
            .where(WebhookEvent.shop_id == shop_id, WebhookEvent.received_at >= since)
            .group_by(WebhookEvent.status)
        ).all()
    )
    last = session.scalar(select(func.max(WebhookEvent.received_at)).where(WebhookEvent.shop_id == shop_id))
    failure = session.execute(
        select(WebhookEvent.topic, WebhookEvent.error, WebhookEvent.received_at)
        .where(WebhookEvent.shop_id == shop_id, WebhookEvent.status == "failed")
        .order_by(WebhookEvent.id.desc())
        .limit(1)
    ).first()
    waiting = counts.get("received", 0) + counts.get("enqueued", 0)
    status = "critical" if counts.get("failed") else "attention" if waiting > 20 else "success"
    return {
        "status": status,
        "last_received": as_utc(last),
        "counts": counts,
        # Stored deliveries ignored, plus our own writes' echoes answered without being stored
        # (WooCommerce; counted in Redis by integrations.woocommerce.echoes): the demo's figure.
        "ignored": counts.get("ignored", 0) + echoes,
        "echoes": echoes,
        "waiting": waiting,
        "last_failure": dict(failure._mapping) if failure else None,
    }


def provider_health(session: Session, shop_id: int) -> dict[str, Any]:
    since = utcnow() - timedelta(hours=24)
    mine = select(Order.id).where(Order.shop_id == shop_id).scalar_subquery()
    counts = dict(
        session.execute(
            select(FulfilmentAttempt.outcome, func.count())
            .where(FulfilmentAttempt.order_id.in_(mine), FulfilmentAttempt.at >= since)
            .group_by(FulfilmentAttempt.outcome)
        ).all()
    )
    bad = ("retryable", "invalid", "auth")
    last_ok = session.scalar(
        select(func.max(FulfilmentAttempt.at)).where(
            FulfilmentAttempt.order_id.in_(mine), FulfilmentAttempt.outcome.in_(("ok", "duplicate", "cancelled"))
        )
    )
    last_error = session.execute(
        select(FulfilmentAttempt.action, FulfilmentAttempt.outcome, FulfilmentAttempt.detail, FulfilmentAttempt.at)
        .where(FulfilmentAttempt.order_id.in_(mine), FulfilmentAttempt.outcome.in_(bad))
        .order_by(FulfilmentAttempt.id.desc())
        .limit(1)
    ).first()
    errors = sum(counts.get(k, 0) for k in bad)
    status = "critical" if counts.get("auth") else "attention" if errors else "success"
    error_text = ""
    if last_error is not None:
        error_text = str((last_error.detail or {}).get("error") or last_error.outcome)
    return {
        "status": status,
        "counts": counts,
        "errors": errors,
        "last_ok": as_utc(last_ok),
        "last_error": {"text": error_text, "at": as_utc(last_error.at), "action": last_error.action}
        if last_error
        else None,
    }
