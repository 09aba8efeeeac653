"""Stock sync: the provider's stock on the shop, diff-only, batched, never oversold.

``sync_shop(shop_id)`` reads the provider's inventory, works out what the shop should show
(``jobs.stock_compute``, pure), and writes only where that differs from what we believe the shop
shows, by compare-and-set. A refused SKU is read back and written again with the shop's own
unexplained sales kept subtracted (``after_refusal``), up to ``WRITE_ROUNDS`` times. Every run is a
``StockSyncRun`` row: what it read, wrote and skipped, and why.

Echoes cannot loop: the target is computed from the provider's figures and Relais' orders only.
Shopify's own quantities are read solely as the basis of the next compare-and-set (SKU map
reads, read-backs after a refusal), and ``inventory_levels/update`` deliveries, which our writes
cause, are not subscribed to or routed anywhere (``ShopifyPlatform.event_kind``).

A large catalogue's SKU map is read by a platform-side export (``jobs.stock_bulk``): a run that
starts one, or finds it still running, ends as ``waiting`` and the job ``await_export`` brings
the sync back once it has finished.

Memory does not grow with the catalogue: the provider's levels are streamed (read ahead on a
thread) and planned ``BATCH`` at a time against the map and the beliefs read from the database
for that batch's SKUs only; the changes go to a writer thread (``jobs.stock_write``) that
gathers them into requests of 250 and records beliefs per request, writing while the next
batches are planned; the run's record keeps exact counts and bounded per-SKU detail
(``jobs.stock_record``). Only the set of SKUs seen grows (tens of bytes each), for the checks
after the stream: SKUs written before and no longer reported go to 0, SKUs the map lacked are
looked up and planned, and a SKU listed twice apart is never planned twice.

The cron scheduler runs ``enqueue_due`` every minute; it enqueues ``sync_shop`` for each active
shop whose ``stock_interval_minutes`` has passed, under the job id ``stock-sync-<shop>``, so
runs of one shop never overlap (a Redis lock also covers ``flask stock sync``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import LockError
from rq import Retry
from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.errors import ConfigError, RelaisError, RetryableError
from integrations.fulfilment.base import FulfilmentProvider
from integrations.platforms import Platform
from jobs import stock_bulk, stock_catalogue
from jobs.locations import StockTarget, stock_target
from jobs.parties import platform_for, provider_for
from jobs.queues import enqueue_once, next_retry
from jobs.runtime import Runtime, get_runtime
from jobs.stock_compute import UNMAPPED, Buffers, believed, plan, sku_batches
from jobs.stock_record import RunRecord
from jobs.stock_write import Writer, read_ahead
from store import stock as stock_store
from store.db import transaction
from store.models import Shop, WebhookEvent, utcnow
from store.orders import as_utc
from store.shops import DEFAULT_SETTINGS, has_provider, provider_available
from store.stock_models import StockSyncRun

log = logging.getLogger(__name__)

MAP_MAX_AGE = timedelta(hours=24)
LOCK_SECONDS = 1800
JOB_TIMEOUT = 1800  # a first sync of a large catalogue builds the whole SKU map
REPORTED_APART = (
    "the provider listed this SKU's centres apart: shown from the first of them only (too low, never too high)"
)


@dataclass
class Outcome:
    """What one run did, for the CLI and the RQ job result."""

    status: str  # ok | failed | busy | skipped | waiting (for the SKU map's export)
    run_id: int | None = None
    written: int = 0
    skipped: int = 0
    unchanged: int = 0
    calls: int = 0
    message: str = ""

    def __str__(self) -> str:
        if self.status in ("busy", "skipped", "waiting"):
            return f"{self.status}: {self.message}"
        text = f"run {self.run_id} {self.status}: {self.written} written, {self.unchanged} unchanged, "
        text += f"{self.skipped} skipped, {self.calls} write call(s)"
        return text + (f" — {self.message}" if self.message else "")


def sync_shop(shop_id: int) -> Retry | str:
    """The RQ job: one sync of one shop. Idempotent: a repeat writes only what still differs."""
    runtime = get_runtime()
    try:
        outcome = run(runtime, shop_id, trigger="cron")
        if outcome.status == "waiting":
            enqueue_once(runtime, "stock", "jobs.stock_bulk.await_export", shop_id, job_id=f"stock-export-{shop_id}")
        return str(outcome)
    except RetryableError as exc:
        retry = next_retry(runtime, exc.retry_after)
        if retry is None:
            raise
        return retry


def enqueue_due(now: datetime | None = None) -> int:
    """Enqueue a sync for every active shop whose interval has passed (cron, every minute)."""
    runtime = get_runtime()
    now = now or utcnow()
    with runtime.sessions() as session:
        shops = session.execute(select(Shop.id, Shop.settings, Shop.provider).where(Shop.status == "active")).all()
        started = stock_store.last_starts(session)
    queued = 0
    for shop_id, shop_settings, provider in shops:
        if not provider_available(provider):
            continue  # no provider yet, no stock to read: the cron queues nothing for this shop
        minutes = float((shop_settings or {}).get("stock_interval_minutes", DEFAULT_SETTINGS["stock_interval_minutes"]))
        last = as_utc(started.get(shop_id))
        # A few seconds of slack: the cron ticks every minute, a 5-minute interval means every 5th tick.
        if minutes <= 0 or (last is not None and now - last < timedelta(minutes=minutes, seconds=-10)):
            continue
        queued += enqueue_once(
            runtime, "stock", "jobs.stock.sync_shop", shop_id, job_id=f"stock-sync-{shop_id}", job_timeout=JOB_TIMEOUT
        )
    return queued


def handle_catalogue_event(runtime: Runtime, session: Session, shop: Shop, event: WebhookEvent) -> str:
    """Apply a product / inventory-item delivery to the shop's SKU map; returns what happened."""
    return stock_catalogue.handle_event(runtime, session, shop, event)


def run(runtime: Runtime, shop_id: int, trigger: str = "cli", *, wait: bool = False) -> Outcome:
    """One sync of one shop, unless one is running already. Raises ``RetryableError`` (recorded
    on the run first) when the provider or the shop answered with a transient failure.

    ``waiting``: the SKU map's export is running; the job path polls it on RQ's schedule, while
    ``wait`` (the CLI, the bench: no worker to hold) polls here until the sync could run.
    """
    started = time.monotonic()
    while True:
        outcome = _run_once(runtime, shop_id, trigger)
        if outcome.status != "waiting" or not wait:
            return outcome
        time.sleep(min(stock_bulk.POLL_SECONDS[-1], max(0.2, (time.monotonic() - started) / 10)))


def _run_once(runtime: Runtime, shop_id: int, trigger: str) -> Outcome:
    lock = runtime.redis.lock(f"relais:stock-sync:{shop_id}", timeout=LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        return Outcome("busy", message=f"a stock sync of shop {shop_id} is running")
    try:
        return _run_locked(runtime, shop_id, trigger)
    finally:
        with contextlib.suppress(LockError):  # expired during a very long run: nothing to release
            lock.release()


def _run_locked(runtime: Runtime, shop_id: int, trigger: str) -> Outcome:
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.status != "active":
            return Outcome("skipped", message=f"shop {shop_id} is not active")
        if not has_provider(shop):
            return Outcome("skipped", message=f"shop {shop_id} has no fulfilment provider yet: no stock to read")
        settings = {**DEFAULT_SETTINGS, **(shop.settings or {})}
        platform, provider = platform_for(runtime, shop), provider_for(runtime, shop)
        row = StockSyncRun(shop_id=shop_id, trigger=trigger, started_at=utcnow())
        session.add(row)
        session.flush()
        run_id = row.id
        stock_store.prune_runs(session, shop_id)
    try:
        # Where the stock goes is settled before anything is read or written: a shop with several
        # locations and no choice is refused with their names (``jobs.locations``).
        target = stock_target(settings, platform.locations)
        steps: dict[str, stock_bulk.MapStep] = {}
        for location in target.locations:  # one export at a time per shop: a location waits its turn
            step = _map_step(runtime, shop_id, platform, location)
            if step.state == "waiting":
                with transaction(runtime.sessions) as session:  # the run did nothing: no record of it
                    session.delete(session.get(StockSyncRun, run_id))
                return Outcome("waiting", message=f"SKU map export {step.export_id} running ({step.reason})")
            steps[location] = step
        return _sync(runtime, run_id, shop_id, settings, provider, platform, target, steps)
    except (RelaisError, NotImplementedError) as exc:
        with transaction(runtime.sessions) as session:
            failed = session.get(StockSyncRun, run_id)
            failed.status, failed.error, failed.finished_at = "failed", str(exc), utcnow()
        if isinstance(exc, RetryableError):
            raise
        log.warning("stock sync of shop %s failed: %s", shop_id, exc)
        return Outcome("failed", run_id=run_id, message=str(exc))


def _map_fresh(runtime: Runtime, shop_id: int, location: str) -> bool:
    with runtime.sessions() as session:
        last_map = as_utc(stock_store.last_map_refresh(session, shop_id))
        has = stock_catalogue.has_map(session, shop_id, location)
    return bool(has and last_map and utcnow() - last_map < MAP_MAX_AGE)


def _map_step(runtime: Runtime, shop_id: int, platform: Platform, location: str) -> stock_bulk.MapStep:
    """The map's state at ``location`` before the sync: fresh, read from an export now, waiting
    for one, or to page."""
    if _map_fresh(runtime, shop_id, location):
        return stock_bulk.MapStep("fresh")
    return stock_bulk.refresh_map(runtime, shop_id, platform, location)


BATCH = 1000  # provider levels planned at a time (a SKU's levels are never split)


def _sync(
    runtime: Runtime,
    run_id: int,
    shop_id: int,
    settings: dict[str, Any],
    provider: FulfilmentProvider,
    platform: Platform,
    target: StockTarget,
    steps: dict[str, stock_bulk.MapStep],
) -> Outcome:
    """Stream the provider's levels a batch at a time: join each batch with the SKU map and the
    beliefs in the database, plan it, and hand its changes to the writer's thread, which writes
    them while the next batches are read and planned. Memory holds a few batches, not the
    catalogue (the one thing that grows with it is the set of SKUs seen, for the end's checks)."""
    for location in target.locations:
        _read_map(runtime, run_id, shop_id, platform, location, steps[location])
    with runtime.sessions() as session:
        orders_read_at = utcnow()
        window = timedelta(minutes=float(settings.get("stock_reserve_pushed_minutes", 10)))
        reserved = stock_store.reserved_units(session, shop_id, orders_read_at - window)
        received = {loc: stock_store.received_since_beliefs(session, shop_id, loc) for loc in target.locations}
    record = RunRecord()
    writer = Writer(runtime, run_id, shop_id, platform, record, orders_read_at)
    planner = _Planner(runtime, shop_id, platform, target, settings, reserved, received, record, writer)
    writer.start()
    try:
        for batch in read_ahead(sku_batches(provider.inventory(), BATCH)):
            planner.batch(batch)
        if not planner.seen:
            # An empty list is far likelier an outage than an empty warehouse: zeroing the shop
            # would be worse than waiting for the next run.
            raise ConfigError("the provider reported no stock at all; nothing written")
        planner.finish()
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    with transaction(runtime.sessions) as session:
        done = session.get(StockSyncRun, run_id)
        done.status, done.finished_at, done.calls = "ok", utcnow(), record.calls
        done.read = record.as_read(reserved)
        refreshed = [step for step in steps.values() if step.state in ("read", "paged")]
        if refreshed:  # how the SKU map was read this run (the first location that needed it)
            source = "export" if refreshed[0].state == "read" else "pages"
            done.read["map"] = {"source": source, "note": refreshed[0].reason}
        done.written = record.written
        done.skipped = record.skipped
    return Outcome("ok", run_id, record.written_count, record.skipped_count, record.unchanged, record.calls)


def _read_map(
    runtime: Runtime, run_id: int, shop_id: int, platform: Platform, location: str, step: stock_bulk.MapStep
) -> None:
    """The map at ``location`` before any batch is planned: read from an export already, or paged now."""
    if step.state == "read":  # the map was read from the shop's export before the sync began
        with transaction(runtime.sessions) as session:
            session.get(StockSyncRun, run_id).map_refreshed_at = step.read_at
    elif step.state == "paged":
        read_at = utcnow()
        items = platform.stock_items(location)  # no transaction open while Shopify pages through
        with transaction(runtime.sessions) as session:
            stock_store.store_items(session, shop_id, location, items, read_at)
            session.get(StockSyncRun, run_id).map_refreshed_at = read_at


class _Planner:
    """Plans one batch of provider levels at every shop location the target writes to."""

    def __init__(
        self,
        runtime: Runtime,
        shop_id: int,
        platform: Platform,
        target: StockTarget,
        settings: dict[str, Any],
        reserved: dict[str, int],
        received: dict[str, dict[str, int]],
        record: RunRecord,
        writer: Writer,
    ) -> None:
        self.runtime, self.shop_id, self.platform, self.target = runtime, shop_id, platform, target
        self.reserved, self.received, self.record, self.writer = reserved, received, record, writer
        self.buffers = Buffers(int(settings.get("safety_buffer") or 0), dict(settings.get("sku_buffers") or {}))
        self.centres = {
            location: {centre for centre, shop_location in target.mapping.items() if shop_location == location}
            for location in target.locations
        }
        self.seen: set[str] = set()  # SKUs planned (the provider reported them)
        self.deferred: list[Any] = []  # levels of SKUs the map lacks, planned after their look-up
        self.deferred_skus: set[str] = set()

    def batch(self, levels: list[Any], *, defer: bool = True) -> None:
        skus = {level.sku for level in levels if level.sku}
        if defer:
            apart = skus & self.seen
            if apart:  # planned already from its first levels: never planned twice in a run
                levels = [level for level in levels if level.sku not in apart]
                self.record.skip(dict.fromkeys(apart, REPORTED_APART))
                skus -= apart
            self.seen |= skus
        self.record.read(levels)
        with self.runtime.sessions() as session:
            catalogue = stock_store.catalogue(session, self.shop_id, skus)
        unknown = skus - catalogue.keys()
        room = stock_catalogue.UNKNOWN_LOOKUP_MAX - len(self.deferred_skus)
        if defer and unknown and room > 0:
            later = set(sorted(unknown)[:room])
            self.deferred_skus |= later
            self.deferred.extend(level for level in levels if level.sku in later)
            levels = [level for level in levels if level.sku not in later]
            skus -= later
        skipped: dict[str, str] = {}
        placed: set[str] = set()
        for location in self.target.locations:
            if self.target.mapping:
                centres = self.centres[location]
                part, mapping = [lv for lv in levels if lv.location in centres], dict.fromkeys(centres, location)
            else:
                part, mapping = levels, {}
            placed.update(level.sku for level in part)
            self._plan(location, part, mapping, skus, catalogue, skipped)
        if self.target.mapping:
            skipped.update(
                {
                    lv.sku: UNMAPPED.format(location=lv.location)
                    for lv in levels
                    if lv.location not in self.target.mapping and lv.sku not in placed
                }
            )
        self.record.skip(skipped)

    def _plan(
        self,
        location: str,
        part: list[Any],
        mapping: dict[str, str],
        skus: set[str],
        catalogue: dict[str, Any],
        skipped: dict[str, str],
    ) -> None:
        received = self.received.get(location, {})
        with self.runtime.sessions() as session:
            rows = stock_store.belief_values(session, self.shop_id, location, skus)
        shown = {
            (location, sku): believed(row.quantity, received.get(sku, 0))
            for sku, row in rows.items()
            if row.quantity is not None
        }
        # Written before and not reported here now: no fulfillable stock (``plan``).
        before = [(location, sku) for sku, row in rows.items() if row.written_at is not None]
        planned = plan(part, mapping, location, self.reserved, self.buffers, catalogue, shown, before)
        skipped.update(planned.skipped)
        self.record.planned(planned.targets, planned.unchanged)
        # Where orders explained a drop, the belief rolls forward (after the SKU's write, if any).
        rolls = {sku: (rows[sku].item_id, shown[(location, sku)]) for sku in received if (location, sku) in shown}
        self.writer.put(location, planned.changes, rolls)

    def finish(self) -> None:
        """After the stream: the SKUs the map lacked, looked up and planned; then the SKUs written
        before that the provider no longer reports (to 0), and beliefs of unreported SKUs rolled."""
        if self.deferred:
            with transaction(self.runtime.sessions) as session:
                for location in self.target.locations:
                    stock_catalogue.look_up_unknown(
                        self.runtime, session, self.shop_id, self.platform, location, self.deferred_skus
                    )
            for start in range(0, len(self.deferred), BATCH):
                self.batch(self.deferred[start : start + BATCH], defer=False)
            self.deferred = []
        for location in self.target.locations:
            after = ""
            while True:
                with self.runtime.sessions() as session:
                    page = stock_store.written_skus(session, self.shop_id, location, after, BATCH)
                if not page:
                    break
                after = page[-1]
                gone = set(page) - self.seen
                if gone:
                    with self.runtime.sessions() as session:
                        catalogue = stock_store.catalogue(session, self.shop_id, gone)
                    skipped: dict[str, str] = {}
                    self._plan(location, [], {}, gone, catalogue, skipped)
                    self.record.skip(skipped)
                    self.seen |= gone
            unreported = set(self.received.get(location, {})) - self.seen
            if unreported:  # not reported and never written: only their beliefs roll forward
                self._plan_rolls_only(location, unreported)

    def _plan_rolls_only(self, location: str, skus: set[str]) -> None:
        received = self.received.get(location, {})
        with self.runtime.sessions() as session:
            rows = stock_store.belief_values(session, self.shop_id, location, skus)
        rolls = {
            sku: (row.item_id, believed(row.quantity, received.get(sku, 0)))
            for sku, row in rows.items()
            if row.quantity is not None
        }
        self.writer.put(location, [], rolls)


def last_report(session: Session, shop_id: int) -> StockSyncRun | None:
    """The last finished run of a shop (the CLI report and the settings page show it)."""
    return stock_store.last_run(session, shop_id, finished=True)
