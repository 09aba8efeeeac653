"""The queries the stock sync needs: reserved units, the SKU map, beliefs, and the run history."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from integrations.platforms import StockItem
from jobs import states
from jobs.stock_compute import MapEntry
from store.models import Order, OrderLine, OrderTransition
from store.stock_models import SkuMapEntry, StockBelief, StockSyncRun

# Not at the provider yet, while the shop already took the units off (Shopify counts every open
# order as committed, paid or not): the provider's count does not include them.
NOT_AT_PROVIDER = (states.RECEIVED, states.HELD, states.READY, states.PUSHING, states.FAILED)
# At the provider: counted there once its inventory catches up, so reserved only while recent.
AT_PROVIDER = (
    *sorted(states.AT_PROVIDER - {states.PUSHING}),
    *sorted(states.FULLY_SHIPPED),
    states.CANCEL_REQUESTED,
    states.CANCEL_TOO_LATE,
)
KEEP_RUNS = 50  # per shop; older run records are pruned
REMEMBER_BATCH = 500  # belief rows looked up and written per statement


def reserved_units(session: Session, shop_id: int, pushed_since: datetime) -> dict[str, int]:
    """Units per SKU the provider has not counted: open orders not pushed yet, and orders pushed
    since ``pushed_since`` (a provider's stock figures lag its orders by minutes)."""
    recent = select(OrderTransition.order_id).where(
        OrderTransition.to_state == states.PUSHED, OrderTransition.at >= pushed_since
    )
    stmt = (
        select(OrderLine.sku, func.sum(OrderLine.quantity))
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            Order.shop_id == shop_id,
            Order.cancelled.is_(False),
            OrderLine.requires_shipping.is_(True),
            OrderLine.sku != "",
            (Order.state.in_(NOT_AT_PROVIDER)) | (Order.state.in_(AT_PROVIDER) & Order.id.in_(recent)),
        )
        .group_by(OrderLine.sku)
    )
    return {sku: int(units) for sku, units in session.execute(stmt) if units}


def received_since_beliefs(session: Session, shop_id: int, location_id: str) -> dict[str, int]:
    """Units per SKU of orders Relais received after each SKU's belief was formed: the shop has
    taken them off since (cancelled orders excepted: the shop puts those back)."""
    stmt = (
        select(OrderLine.sku, func.sum(OrderLine.quantity))
        .join(Order, Order.id == OrderLine.order_id)
        .join(
            StockBelief,
            and_(
                StockBelief.shop_id == Order.shop_id,
                StockBelief.location_id == location_id,
                StockBelief.sku == OrderLine.sku,
            ),
        )
        .where(
            Order.shop_id == shop_id,
            Order.cancelled.is_(False),
            OrderLine.requires_shipping.is_(True),
            Order.created_at > StockBelief.as_of,
        )
        .group_by(OrderLine.sku)
    )
    return {sku: int(units) for sku, units in session.execute(stmt) if units}


def catalogue(session: Session, shop_id: int, skus: Iterable[str] | None = None) -> dict[str, list[MapEntry]]:
    """The shop's SKU map (or its rows for ``skus``, one batch of a streamed sync): items per SKU
    (more than one is a duplicate), each stocked at every location where a read found it stocked
    (the map keeps one row per item and location read)."""
    # Columns, not ORM objects: a large catalogue's map is read on every sync.
    columns = (SkuMapEntry.sku, SkuMapEntry.item_id, SkuMapEntry.managed, SkuMapEntry.stocked, SkuMapEntry.location_id)
    stmt = select(*columns).where(SkuMapEntry.shop_id == bindparam("shop"))
    params: dict[str, Any] = {"shop": shop_id}
    if skus is not None:
        # The SKUs go in as a parameter: a literal list would stay in the statement cache.
        stmt = stmt.where(SkuMapEntry.sku.in_(bindparam("skus", expanding=True)))
        params["skus"] = list(skus)
    rows: dict[tuple[str, str], tuple[bool, set[str]]] = {}
    for sku, item_id, managed, stocked, location_id in session.execute(stmt.order_by(SkuMapEntry.id), params):
        _, at = rows.get((sku, item_id), (managed, set()))
        if stocked and location_id:
            at.add(location_id)
        rows[(sku, item_id)] = (managed, at)  # the last row read gives ``managed``, as before
    found: dict[str, list[MapEntry]] = {}
    for (sku, item_id), (managed, at) in rows.items():
        found.setdefault(sku, []).append(MapEntry(item_id=item_id, managed=managed, stocked_at=frozenset(at)))
    return found


def beliefs(
    session: Session, shop_id: int, location_id: str, skus: Iterable[str] | None = None
) -> dict[str, StockBelief]:
    """The belief rows (ORM, to be changed) of the location, or of ``skus`` only."""
    stmt = select(StockBelief).where(StockBelief.shop_id == shop_id, StockBelief.location_id == location_id)
    if skus is not None:
        stmt = stmt.where(StockBelief.sku.in_(bindparam("skus", expanding=True)))
        return {row.sku: row for row in session.scalars(stmt, {"skus": list(skus)})}
    return {row.sku: row for row in session.scalars(stmt)}


def belief_values(
    session: Session, shop_id: int, location_id: str, skus: Iterable[str] | None = None
) -> dict[str, Any]:
    """What we believe per SKU (rows with ``item_id`` and ``quantity``), read-only and light; of
    ``skus`` only when given (one batch of a streamed sync)."""
    stmt = select(StockBelief.sku, StockBelief.item_id, StockBelief.quantity, StockBelief.written_at).where(
        StockBelief.shop_id == bindparam("shop"), StockBelief.location_id == bindparam("location")
    )
    params: dict[str, Any] = {"shop": shop_id, "location": location_id}
    if skus is not None:
        stmt = stmt.where(StockBelief.sku.in_(bindparam("skus", expanding=True)))
        params["skus"] = list(skus)
    return {row.sku: row for row in session.execute(stmt, params)}


def store_items(
    session: Session,
    shop_id: int,
    location_id: str,
    items: Iterable[StockItem],
    read_at: datetime,
    only_skus: Iterable[str] | None = None,
    forget_items: Iterable[str] = (),
) -> int:
    """Replace the SKU map at ``location_id`` (entirely, or only the rows of ``only_skus`` and
    ``forget_items``) with ``items``; what the shop showed becomes the belief of each stocked item.
    Rows read at other locations stay (a full listing drops the items it no longer has). Returns
    rows kept."""
    items = [item for item in items if item.sku]
    here = SkuMapEntry.location_id == location_id
    stale = delete(SkuMapEntry).where(SkuMapEntry.shop_id == shop_id)
    if only_skus is not None:
        skus = set(only_skus) | {item.sku for item in items}
        stale = stale.where(here & (SkuMapEntry.sku.in_(skus) | SkuMapEntry.item_id.in_(set(forget_items))))
    else:
        stale = stale.where(here)
    session.execute(stale)
    session.add_all(
        SkuMapEntry(
            shop_id=shop_id,
            sku=item.sku,
            item_id=item.item_id,
            managed=item.managed,
            location_id=location_id,
            stocked=item.quantity is not None,
            refreshed_at=read_at,
        )
        for item in items
    )
    if only_skus is None:
        # A full listing names every item whatever its location: one it lacks is gone everywhere
        # (a subquery, not a list of ids: catalogues outgrow a statement's bind parameters).
        session.flush()
        listed = select(SkuMapEntry.item_id).where(SkuMapEntry.shop_id == shop_id, here)
        session.execute(
            delete(SkuMapEntry).where(
                SkuMapEntry.shop_id == shop_id,
                SkuMapEntry.location_id != location_id,
                SkuMapEntry.item_id.not_in(listed),
            )
        )
    observed = {item.sku: (item.item_id, item.quantity) for item in items if item.quantity is not None}
    remember(session, shop_id, location_id, observed, read_at, written=False)
    return len(items)


def forget_item(session: Session, shop_id: int, item_id: str) -> int:
    """Drop a deleted item from the map; returns rows removed."""
    result = session.execute(delete(SkuMapEntry).where(SkuMapEntry.shop_id == shop_id, SkuMapEntry.item_id == item_id))
    return int(result.rowcount or 0)


def skus_of_items(session: Session, shop_id: int, item_ids: Iterable[str]) -> set[str]:
    stmt = select(SkuMapEntry.sku).where(SkuMapEntry.shop_id == shop_id, SkuMapEntry.item_id.in_(set(item_ids)))
    return set(session.scalars(stmt))


def remember(
    session: Session,
    shop_id: int,
    location_id: str,
    values: Mapping[str, tuple[str, int | None]],
    as_of: datetime,
    *,
    written: bool,
    run_id: int | None = None,
) -> None:
    """Record what the shop shows (sku → (item id, quantity)) as of ``as_of``: written or read.

    Core statements in batches (existing rows updated by primary key, new ones inserted), no ORM
    object per SKU: a first sync of a large catalogue records every SKU it writes."""
    known = [(sku, item_id, quantity) for sku, (item_id, quantity) in values.items() if quantity is not None]
    for start in range(0, len(known), REMEMBER_BATCH):
        _remember_batch(session, shop_id, location_id, known[start : start + REMEMBER_BATCH], as_of, written, run_id)


_BELIEFS = StockBelief.__table__
# Core statements run as one executemany each: no ORM bookkeeping per row (a first sync records
# every SKU of a large catalogue).
_SET_READ = (
    _BELIEFS.update()
    .where(_BELIEFS.c.id == bindparam("b_id"))
    .values(item_id=bindparam("b_item"), quantity=bindparam("b_quantity"), as_of=bindparam("b_as_of"))
)
_SET_WRITTEN = _SET_READ.values(written_at=bindparam("b_as_of"), run_id=bindparam("b_run"))
_STAMP_READ = _BELIEFS.update().where(_BELIEFS.c.id.in_(bindparam("ids", expanding=True))).values(as_of=bindparam("at"))


def _remember_batch(
    session: Session,
    shop_id: int,
    location_id: str,
    values: list[tuple[str, str, int]],
    as_of: datetime,
    written: bool,
    run_id: int | None,
) -> None:
    """Upsert one batch of (sku, item id, quantity) beliefs; the last value of a SKU wins."""
    latest = {sku: (item_id, quantity) for sku, item_id, quantity in values}
    stmt = select(StockBelief.sku, StockBelief.id, StockBelief.item_id, StockBelief.quantity).where(
        StockBelief.shop_id == bindparam("shop"),
        StockBelief.location_id == bindparam("location"),
        StockBelief.sku.in_(bindparam("skus", expanding=True)),
    )
    found = session.execute(stmt, {"shop": shop_id, "location": location_id, "skus": list(latest)})
    existing: dict[str, int] = {}
    same: list[int] = []  # a read that agrees with the belief: only its time moves (one statement)
    stored: set[str] = set()
    for sku, row_id, item_id, quantity in found:
        stored.add(sku)
        if not written and latest[sku] == (item_id, quantity):
            same.append(row_id)
        else:
            existing[sku] = row_id
    if same:
        session.execute(_STAMP_READ, {"ids": same, "at": as_of})
    changed = [
        {"b_id": existing[sku], "b_item": item_id, "b_quantity": quantity, "b_as_of": as_of, "b_run": run_id}
        for sku, (item_id, quantity) in latest.items()
        if sku in existing
    ]
    if changed:
        session.execute(_SET_WRITTEN if written else _SET_READ, changed)
    new = [
        {
            "shop_id": shop_id,
            "location_id": location_id,
            "sku": sku,
            "item_id": item_id,
            "quantity": quantity,
            "as_of": as_of,
            "written_at": as_of if written else None,
            "run_id": run_id if written else None,
        }
        for sku, (item_id, quantity) in latest.items()
        if sku not in stored
    ]
    if new:
        session.execute(_BELIEFS.insert(), new)


def uncertain(session: Session, shop_id: int, location_id: str, skus: Iterable[str], at: datetime) -> None:
    """Forget what the shop shows for ``skus``: a write whose answer never came may or may not
    have been applied. The next write reads the shop first instead of guessing."""
    wanted = sorted(set(skus))
    for start in range(0, len(wanted), REMEMBER_BATCH):
        stmt = (
            update(StockBelief)
            .where(
                StockBelief.shop_id == bindparam("shop"),
                StockBelief.location_id == bindparam("location"),
                StockBelief.sku.in_(bindparam("skus", expanding=True)),
            )
            .values(quantity=None, as_of=bindparam("at"))
        )
        params = {"shop": shop_id, "location": location_id, "skus": wanted[start : start + REMEMBER_BATCH], "at": at}
        session.execute(stmt, params, execution_options={"synchronize_session": False})


def written_before(session: Session, shop_id: int) -> list[tuple[str, str]]:
    stmt = select(StockBelief.location_id, StockBelief.sku).where(
        StockBelief.shop_id == shop_id, StockBelief.written_at.is_not(None)
    )
    return [(location, sku) for location, sku in session.execute(stmt)]


def written_skus(session: Session, shop_id: int, location_id: str, after: str, limit: int) -> list[str]:
    """SKUs Relais has written at the location, in SKU order after ``after``: one page of them
    (a streamed sync zeroes those the provider no longer reports, a page at a time)."""
    stmt = (
        select(StockBelief.sku)
        .where(
            StockBelief.shop_id == bindparam("shop"),
            StockBelief.location_id == bindparam("location"),
            StockBelief.written_at.is_not(None),
            StockBelief.sku > bindparam("after"),
        )
        .order_by(StockBelief.sku)
        .limit(limit)
    )
    return list(session.scalars(stmt, {"shop": shop_id, "location": location_id, "after": after}))


def last_run(session: Session, shop_id: int, *, finished: bool = False) -> StockSyncRun | None:
    stmt = select(StockSyncRun).where(StockSyncRun.shop_id == shop_id)
    if finished:
        stmt = stmt.where(StockSyncRun.status != "running")
    return session.scalars(stmt.order_by(StockSyncRun.id.desc()).limit(1)).first()


def last_map_refresh(session: Session, shop_id: int) -> datetime | None:
    stmt = select(func.max(StockSyncRun.map_refreshed_at)).where(StockSyncRun.shop_id == shop_id)
    return session.scalar(stmt)


def last_starts(session: Session) -> dict[int, datetime]:
    """Each shop's latest sync start (for the scheduler)."""
    stmt = select(StockSyncRun.shop_id, func.max(StockSyncRun.started_at)).group_by(StockSyncRun.shop_id)
    return {shop_id: started for shop_id, started in session.execute(stmt)}


def prune_runs(session: Session, shop_id: int, keep: int = KEEP_RUNS) -> None:
    """Keep the last ``keep`` runs of a shop (each holds per-SKU detail)."""
    ids = select(StockSyncRun.id).where(StockSyncRun.shop_id == shop_id).order_by(StockSyncRun.id.desc())
    cutoff = session.scalars(ids.offset(keep).limit(1)).first()
    if cutoff is not None:
        session.execute(delete(StockSyncRun).where(StockSyncRun.shop_id == shop_id, StockSyncRun.id <= cutoff))
