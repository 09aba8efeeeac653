"""Queries of fulfilment-service mode: the shop's service, its FO rows, and what a push sends.

In service mode the provider is given only the lines of the fulfilment orders Shopify assigned
to our location and asked us to fulfil (``requested``) or that we accepted: a line the merchant
ships from their own location never reaches the provider.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from integrations import model
from store.fulfilment_service_models import FulfilmentOrderRow, FulfilmentService
from store.models import Order, Shop

SERVICE_MODE = "service"
ORDER_WEBHOOKS_MODE = "order_webhooks"
FULFILMENT_MODES = (SERVICE_MODE, ORDER_WEBHOOKS_MODE)
SENT_STATES = ("requested", "accepted", "cancellation_requested", "cancellation_rejected")


def in_service_mode(shop: Shop) -> bool:
    return shop.platform == "shopify" and (shop.settings or {}).get("fulfilment_mode") == SERVICE_MODE


def service_of(session: Session, shop_id: int) -> FulfilmentService | None:
    """The shop's fulfilment service (the latest made, when the provider account changed)."""
    return session.scalars(
        select(FulfilmentService).where(FulfilmentService.shop_id == shop_id).order_by(FulfilmentService.id.desc())
    ).first()


def fo_row(session: Session, shop_id: int, fo_id: str) -> FulfilmentOrderRow | None:
    return session.scalars(
        select(FulfilmentOrderRow)
        .where(FulfilmentOrderRow.shop_id == shop_id, FulfilmentOrderRow.fulfilment_order_id == fo_id)
        .with_for_update()
    ).first()


def record(
    session: Session, shop_id: int, fo: Any, state: str | None = None, *, keep_lines: bool = False
) -> FulfilmentOrderRow:
    """Upsert what Shopify says of ``fo`` (an ``integrations.shopify.fulfilment_orders.FulfilmentOrder``)."""
    row = fo_row(session, shop_id, fo.id)
    if row is None:
        row = FulfilmentOrderRow(shop_id=shop_id, fulfilment_order_id=fo.id, platform_order_id=fo.legacy_order_id)
        session.add(row)
    row.location_id = fo.location_id
    row.shopify_status = fo.status
    row.request_status = fo.request_status
    if not keep_lines or not row.lines:
        row.lines = [line.as_json() for line in fo.lines if line.quantity > 0]
    if state:
        row.state = state
    session.flush()
    return row


def lines_for_push(session: Session, shop: Shop, order: Order, order_model: model.Order) -> model.Order | None:
    """The order as the provider must receive it: in service mode, only the lines of its FOs at
    our location that were requested (None: none is, nothing to send yet); else unchanged."""
    if not in_service_mode(shop):
        return order_model
    rows = session.scalars(
        select(FulfilmentOrderRow)
        .where(FulfilmentOrderRow.order_id == order.id, FulfilmentOrderRow.state.in_(SENT_STATES))
        .order_by(FulfilmentOrderRow.id)
    ).all()
    by_id = {line.platform_line_id.rsplit("/", 1)[-1]: line for line in order_model.lines}
    wanted, skus = _units_by_line(rows)
    if not wanted:
        return None
    lines = []
    for key, quantity in wanted.items():
        known = by_id.get(key)
        if known is not None:
            lines.append(replace(known, quantity=quantity, requires_shipping=True))
        else:  # a line Shopify added after the order webhook: its SKU comes from the FO
            lines.append(model.Line(platform_line_id=key, sku=skus[key], quantity=quantity, requires_shipping=True))
    return replace(order_model, lines=tuple(lines))


def units_sent(order: Order) -> Counter[str]:
    """SKU → units the provider was given for the order in service mode (empty otherwise): what
    "shipped" means for an order part of which the merchant ships from their own location."""
    session = object_session(order)
    units: Counter[str] = Counter()
    if session is None or order.id is None:
        return units
    rows = session.scalars(
        select(FulfilmentOrderRow).where(
            FulfilmentOrderRow.order_id == order.id, FulfilmentOrderRow.state.in_(SENT_STATES)
        )
    ).all()
    by_line, skus = _units_by_line(rows)
    for key, quantity in by_line.items():
        units[skus[key]] += quantity
    return units


def _units_by_line(rows: Sequence[FulfilmentOrderRow]) -> tuple[dict[str, int], dict[str, str]]:
    """Order line id → units, and → SKU, over the FO rows. The largest count of a line wins, not
    the sum: an FO Shopify split off an accepted one repeats units its origin's row already holds
    (a line is never sent twice: a further request of an order already sent is refused)."""
    wanted: dict[str, int] = {}
    skus: dict[str, str] = {}
    for row in rows:
        for line in row.lines or []:
            key = str(line["line_item_id"]).rsplit("/", 1)[-1]
            wanted[key] = max(wanted.get(key, 0), int(line["quantity"]))
            skus[key] = line.get("sku") or ""
    return wanted, skus
