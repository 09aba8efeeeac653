"""What the merchant's view shows, read in a few queries: orders needing attention, each recent
order's timeline, the health of webhooks and of the provider. Read-only; plain dicts for Jinja."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from jobs import states
from jobs.decide import WAITING_FOR_PROVIDER, is_waiting_for_provider
from store.models import FulfilmentAttempt, Order, OrderLine, OrderTransition, WebhookEvent, utcnow
from store.orders import as_utc

ATTENTION_STATES = (states.FAILED, states.HELD, states.CANCEL_TOO_LATE, states.PARTIALLY_CANCELLED)
# Where a line without a SKU stops the order (the provider cannot pick what it cannot name).
BEFORE_PROVIDER = (states.RECEIVED, states.HELD, states.READY, states.FAILED)


@dataclass
class Step:
    label: str
    at: datetime | None
    status: str  # done | problem | todo


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
        reached.setdefault(t.to_state, t.at)
    held = reached.get(states.HELD)
    pushed = reached.get(states.PUSHED)
    shipped = reached.get(states.SHIPPED) or reached.get(states.PARTIALLY_SHIPPED) or reached.get(states.DELIVERED)
    written = [s.written_at for s in row.shipments if s.written_at]
    steps = [Step("Received", reached.get(states.RECEIVED), "done")]
    if held:
        steps.append(Step("Held", held, "problem" if row.state == states.HELD else "done"))
    failed = row.state == states.FAILED
    steps.append(Step("Failed" if failed and not pushed else "Pushed", pushed, "problem" if failed else _done(pushed)))
    steps.append(Step("Shipped", shipped, _done(shipped)))
    steps.append(Step("Tracking written", min(written) if written else None, _done(written)))
    if row.state in states.CANCEL_STATES:
        steps.append(Step(row.state.replace("_", " ").capitalize(), row.updated_at, "problem"))
    return steps


def _done(value: object) -> str:
    return "done" if value else "todo"


def _view(row: Order, category: str = "") -> OrderView:
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
            for t in row.history[-12:]  # the latest dozen: an order's story, not its log
        ],
        category=category,
        actions=_actions(row.state, waiting),
    )


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
    rows = _load(
        session,
        Order.shop_id == shop_id,
        or_(Order.state.in_(ATTENTION_STATES), Order.id.in_(no_sku) & Order.state.in_(BEFORE_PROVIDER)),
        limit=limit,
    )
    views = []
    for row in rows:
        blank = any(li.requires_shipping and li.quantity > 0 and not li.sku.strip() for li in row.lines)
        view = _view(row, row.state.replace("_", " "))
        if blank and view.category != WAITING_FOR_PROVIDER and row.state in BEFORE_PROVIDER:
            view.category = "unknown SKU"
            view.reason = "a line to ship has no SKU, so the provider cannot pick it: add the SKU on the shop"
        views.append(view)
    return views


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


def webhook_health(session: Session, shop_id: int) -> dict[str, Any]:
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
