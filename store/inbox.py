"""The inbox insert: one SQL statement stores a delivery for its shop, or finds it is a repeat.

A webhook is acknowledged only once its row is durably stored, so the insert is on the path of
every delivery. It is one autocommitted statement, the shop lookup inside it:

    INSERT INTO webhook_events (…, shop_id, …) SELECT …, shops.id, … FROM shops WHERE <the shop>
    ON CONFLICT DO NOTHING RETURNING id, shop_id

A returned row is a new delivery, committed when the statement returns. No row means a repeat
(a unique constraint held: same delivery key, or same platform event for that shop) or no such
shop; only then are further queries made to tell which. The shop is read in the same statement
rather than from a cache of its id: a cached id could outlive its shop (``shop/redact`` deletes
the row, and SQLite may hand the same id to the next shop created), and a delivery must never be
filed under another shop. Works on PostgreSQL and SQLite (3.35+, for RETURNING).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from store.models import Shop, WebhookEvent, utcnow

_ATTEMPTS = 3  # a row or shop deleted between two of our statements: look again, then give up


@dataclass(frozen=True)
class Delivery:
    """What is kept of one accepted webhook (never its signature)."""

    source: str  # shopify | woocommerce | a provider's name
    delivery_key: str  # unique per source: the sender's id of this delivery, scoped to the shop
    topic: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    event_key: str | None = None  # one row per platform event: a second delivery of it is a repeat


@dataclass(frozen=True)
class Stored:
    event_id: int
    shop_id: int
    new: bool  # inserted by this call: no job can exist for it yet
    needs_job: bool  # new, or a repeat of a row never processed


class InboxConflict(RuntimeError):
    """A repeat whose first row could not be found, attempt after attempt (it keeps being deleted)."""


def shop_by_domain(platform: str, domain: str) -> ColumnElement[bool]:
    """Which shop a delivery is for, when the sender names it by domain (Shopify)."""
    return and_(Shop.platform == platform, Shop.domain == domain)


def shop_by_id(shop_id: int) -> ColumnElement[bool]:
    """Which shop, when the receiver already knows it (verified with that shop's own secret)."""
    return Shop.id == shop_id


def store(engine: Engine, delivery: Delivery, shop: ColumnElement[bool]) -> Stored | None:
    """Store ``delivery`` for the shop ``shop`` selects, committed before this returns; None when
    no shop matches (nothing stored). Concurrent copies of one delivery cannot both get in: the
    unique constraints decide, and the loser gets the winner's row as a repeat."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for _ in range(_ATTEMPTS):
            try:
                row = conn.execute(_insert(engine, delivery, shop)).first()
            except IntegrityError:
                # The shop was deleted between our statement's read and its foreign-key check.
                continue
            if row is not None:
                return Stored(row.id, row.shop_id, new=True, needs_job=True)
            shop_id = conn.scalar(select(Shop.id).where(shop))
            if shop_id is None:
                return None
            existing = _first_copy(conn, delivery, shop_id)
            if existing is not None:
                return Stored(existing.id, shop_id, new=False, needs_job=existing.status == "received")
    raise InboxConflict(f"delivery {delivery.delivery_key!r} conflicts with a row that keeps disappearing")


def _insert(engine: Engine, delivery: Delivery, shop: ColumnElement[bool]) -> Any:
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    table = WebhookEvent.__table__
    values = {
        "source": delivery.source,
        "delivery_key": delivery.delivery_key,
        "event_key": delivery.event_key,
        "topic": delivery.topic,
        "headers": dict(delivery.headers),
        "body": delivery.body,
        "status": "received",
        "attempts": 0,
        "received_at": utcnow(),
    }
    columns = [literal(value, table.c[name].type).label(name) for name, value in values.items()]
    rows = select(*columns, Shop.id.label("shop_id")).where(shop)
    return (
        insert(table)
        .from_select([*values, "shop_id"], rows)
        .on_conflict_do_nothing()  # any unique constraint: the delivery key or the event key
        .returning(table.c.id, table.c.shop_id)
    )


def _first_copy(conn: Connection, delivery: Delivery, shop_id: int) -> Any:
    same = WebhookEvent.delivery_key == delivery.delivery_key
    if delivery.event_key is not None:
        same = or_(same, and_(WebhookEvent.shop_id == shop_id, WebhookEvent.event_key == delivery.event_key))
    return conn.execute(
        select(WebhookEvent.id, WebhookEvent.status)
        .where(WebhookEvent.source == delivery.source, same)
        .order_by(WebhookEvent.id)
        .limit(1)
    ).first()
