"""The queries of the SKU map read from an export: the export's record, and the map replaced in batches.

``replace_map`` takes the items as an iterator and writes them ``BATCH`` at a time with Core
statements (no ORM object per row kept in the session), so reading a map of any size holds one
batch in memory, not the catalogue. It runs in the caller's transaction: a download that breaks
off rolls back to the previous map.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from integrations.platforms import StockItem
from store import stock as stock_store
from store.models import utcnow
from store.stock_models import SkuMapEntry, StockExportRecord

BATCH = 2000
_MAP = SkuMapEntry.__table__


def open_export(session: Session, shop_id: int) -> StockExportRecord | None:
    """The shop's export still running, if any (the newest)."""
    stmt = select(StockExportRecord).where(StockExportRecord.shop_id == shop_id, StockExportRecord.status == "running")
    return session.scalars(stmt.order_by(StockExportRecord.id.desc()).limit(1)).first()


def start_export(session: Session, shop_id: int, location_id: str, export_id: str) -> StockExportRecord:
    row = StockExportRecord(shop_id=shop_id, location_id=location_id, export_id=export_id, status="running")
    session.add(row)
    session.flush()
    return row


def finish_export(session: Session, row_id: int, status: str, *, error: str = "", items: int | None = None) -> None:
    row = session.get(StockExportRecord, row_id)
    if row is not None:
        row.status, row.finished_at, row.items, row.error = status, utcnow(), items, error or None


def failures_in_a_row(session: Session, shop_id: int, since: datetime | None) -> tuple[int, str]:
    """How many of the shop's exports started after ``since`` (the map's last refresh, by any
    means) failed since its last good one, and the last reason: a map read page by page after
    failures lets the next refresh try an export again."""
    stmt = (
        select(StockExportRecord.status, StockExportRecord.error)
        .where(StockExportRecord.shop_id == shop_id, StockExportRecord.status != "running")
        .order_by(StockExportRecord.id.desc())
        .limit(10)
    )
    if since is not None:
        stmt = stmt.where(StockExportRecord.started_at > since)
    count, reason = 0, ""
    for status, error in session.execute(stmt):
        if status == "done":
            break
        count += 1
        reason = reason or (error or status)
    return count, reason


def map_size(session: Session, shop_id: int) -> int:
    return int(session.scalar(select(func.count(SkuMapEntry.id)).where(SkuMapEntry.shop_id == shop_id)) or 0)


def replace_map(session: Session, shop_id: int, location_id: str, items: Iterable[StockItem], read_at: datetime) -> int:
    """Replace the SKU map at ``location_id`` with ``items`` (streamed), and record what each
    stocked item shows as the belief of its SKU, as ``store.stock.store_items`` does: rows read at
    other locations stay, except items this full listing no longer has. Returns rows stored.

    A day-old map is mostly unchanged: each batch's rows are compared with what the map holds,
    rows that agree are only stamped ``refreshed_at`` (one statement per batch), changed ones
    updated and new ones inserted; rows the listing did not stamp are deleted at the end (a row
    a catalogue delivery refreshed after the export began is newer than it, and stays)."""
    stored = 0
    for batch in _batches((item for item in items if item.sku), BATCH):
        _store_batch(session, shop_id, location_id, batch, read_at)
        _observe(session, shop_id, location_id, batch, read_at)
        stored += len(batch)
    # No session synchronisation: it would fetch every deleted row's id (a catalogue-sized list).
    session.execute(
        delete(SkuMapEntry).where(
            SkuMapEntry.shop_id == shop_id,
            SkuMapEntry.location_id == location_id,
            SkuMapEntry.refreshed_at < read_at,
        ),
        execution_options={"synchronize_session": False},
    )
    # A full listing names every item whatever its location: one it lacks is gone everywhere.
    listed = select(SkuMapEntry.item_id).where(SkuMapEntry.shop_id == shop_id, SkuMapEntry.location_id == location_id)
    session.execute(
        delete(SkuMapEntry).where(
            SkuMapEntry.shop_id == shop_id, SkuMapEntry.location_id != location_id, SkuMapEntry.item_id.not_in(listed)
        ),
        execution_options={"synchronize_session": False},
    )
    return stored


_EXISTING = select(_MAP.c.item_id, _MAP.c.id, _MAP.c.sku, _MAP.c.managed, _MAP.c.stocked).where(
    _MAP.c.shop_id == bindparam("shop"),
    _MAP.c.location_id == bindparam("location"),
    _MAP.c.item_id.in_(bindparam("items", expanding=True)),
)
_STAMP = _MAP.update().where(_MAP.c.id.in_(bindparam("ids", expanding=True))).values(refreshed_at=bindparam("at"))
_CHANGE = (
    _MAP.update()
    .where(_MAP.c.id == bindparam("m_id"))
    .values(
        sku=bindparam("m_sku"),
        managed=bindparam("m_managed"),
        stocked=bindparam("m_stocked"),
        refreshed_at=bindparam("m_at"),
    )
)


def _store_batch(session: Session, shop_id: int, location_id: str, batch: list[StockItem], read_at: datetime) -> None:
    """One batch of the listing into the map: stamped, changed or inserted (Core, no ORM objects)."""
    params = {"shop": shop_id, "location": location_id, "items": [item.item_id for item in batch]}
    existing = {row.item_id: row for row in session.execute(_EXISTING, params)}
    same: list[int] = []
    changed: list[dict[str, object]] = []
    new: list[dict[str, object]] = []
    for item in batch:
        stocked = item.quantity is not None
        row = existing.get(item.item_id)
        if row is None:
            new.append(
                {
                    "shop_id": shop_id,
                    "sku": item.sku,
                    "item_id": item.item_id,
                    "managed": item.managed,
                    "location_id": location_id,
                    "stocked": stocked,
                    "refreshed_at": read_at,
                }
            )
        elif (row.sku, bool(row.managed), bool(row.stocked)) == (item.sku, item.managed, stocked):
            same.append(row.id)
        else:
            changed.append(
                {"m_id": row.id, "m_sku": item.sku, "m_managed": item.managed, "m_stocked": stocked, "m_at": read_at}
            )
    if same:
        session.execute(_STAMP, {"ids": same, "at": read_at})
    if changed:
        session.execute(_CHANGE, changed)
    if new:
        session.execute(_MAP.insert(), new)


def _observe(session: Session, shop_id: int, location_id: str, batch: list[StockItem], read_at: datetime) -> None:
    """Beliefs for the batch's stocked items (the last item of a duplicated SKU wins, as in ``remember``)."""
    seen = {item.sku: (item.item_id, item.quantity) for item in batch if item.quantity is not None}
    stock_store.remember(session, shop_id, location_id, seen, read_at, written=False)


def _batches(items: Iterator[StockItem], size: int) -> Iterator[list[StockItem]]:
    while batch := list(islice(items, size)):
        yield batch
