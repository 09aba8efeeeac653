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

The connection is taken from the pool without the ping that guards every other checkout
(``store.db.unpinged``): on a busy receiver that ping is a round trip as long as the insert. A
pooled connection found dead (the database restarted or failed over since it was last used)
fails on the insert instead; SQLAlchemy then marks the pool's older connections stale, and the
delivery is stored once more on a fresh connection. Running the insert twice is harmless: if the
first one did commit before its connection died, the second finds the row as a repeat.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from store.db import unpinged
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


@dataclass(frozen=True)
class ShopRef:
    """Which shop a delivery is for: by ``domain`` (platform and domain) or by ``id``."""

    by: str
    params: Mapping[str, Any]

    def where(self) -> ColumnElement[bool]:
        if self.by == "domain":
            return and_(Shop.platform == self.params["shop_platform"], Shop.domain == self.params["shop_domain"])
        return Shop.id == self.params["shop_id"]


def shop_by_domain(platform: str, domain: str) -> ShopRef:
    """The sender names the shop by its domain (Shopify)."""
    return ShopRef("domain", {"shop_platform": platform, "shop_domain": domain})


def shop_by_id(shop_id: int) -> ShopRef:
    """The receiver already knows the shop (verified with that shop's own secret)."""
    return ShopRef("id", {"shop_id": shop_id})


def store(engine: Engine, delivery: Delivery, shop: ShopRef) -> Stored | None:
    """Store ``delivery`` for the shop ``shop`` selects, committed before this returns; None when
    no shop matches (nothing stored). Concurrent copies of one delivery cannot both get in: the
    unique constraints decide, and the loser gets the winner's row as a repeat."""
    try:
        with unpinged():
            return _store(engine.connect(), delivery, shop)
    except DBAPIError as error:
        if not error.connection_invalidated:  # a database that refuses: the caller answers 503
            raise
    # A pooled connection was dead (its server restarted): once more on a connection checked as
    # any other is. A new delivery may be stored by now (its commit reached the server before the
    # connection broke): it is then found as a repeat, never stored twice.
    return _store(engine.connect(), delivery, shop)


def _store(connection: Connection, delivery: Delivery, shop: ShopRef) -> Stored | None:
    with connection.execution_options(isolation_level="AUTOCOMMIT") as conn:
        for _ in range(_ATTEMPTS):
            try:
                row = _insert(conn, delivery, shop)
            except IntegrityError:
                # The shop was deleted between our statement's read and its foreign-key check.
                continue
            if row is not None:
                return Stored(row.id, row.shop_id, new=True, needs_job=True)
            shop_id = conn.scalar(select(Shop.id).where(shop.where()))
            if shop_id is None:
                return None
            existing = _first_copy(conn, delivery, shop_id)
            if existing is not None:
                return Stored(existing.id, shop_id, new=False, needs_job=existing.status == "received")
    raise InboxConflict(f"delivery {delivery.delivery_key!r} conflicts with a row that keeps disappearing")


_COLUMNS = ("source", "delivery_key", "event_key", "topic", "headers", "body", "status", "attempts", "received_at")


@functools.cache
def _insert_statement(dialect: str, by: str) -> Any:
    """The insert, built once per dialect and way of naming the shop (``domain`` or ``id``), its
    values bound at execution: no statement is built, nor its cache key computed, per delivery."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = WebhookEvent.__table__
    values = [bindparam(name, type_=table.c[name].type).label(name) for name in _COLUMNS]
    if by == "domain":
        shop = and_(Shop.platform == bindparam("shop_platform"), Shop.domain == bindparam("shop_domain"))
    else:
        shop = Shop.id == bindparam("shop_id")
    return (
        insert(table)
        .from_select([*_COLUMNS, "shop_id"], select(*values, Shop.id).where(shop))
        .on_conflict_do_nothing()  # any unique constraint: the delivery key or the event key
        .returning(table.c.id, table.c.shop_id)
    )


def _insert(conn: Connection, delivery: Delivery, shop: ShopRef) -> Any:
    params = {
        "source": delivery.source,
        "delivery_key": delivery.delivery_key,
        "event_key": delivery.event_key,
        "topic": delivery.topic,
        "headers": dict(delivery.headers),
        "body": delivery.body,
        "status": "received",
        "attempts": 0,
        "received_at": utcnow(),
        **shop.params,
    }
    return conn.execute(_insert_statement(conn.dialect.name, shop.by), params).first()


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
