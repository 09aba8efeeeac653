"""The SKU map of a large catalogue, read by a platform-side export (Shopify: a bulk operation).

Page by page, a 100,000-item map costs Shopify's bucket about 400,000 points (over an hour on a
standard plan) and holds a worker all that time. At ``RELAIS_STOCK_BULK_THRESHOLD`` items or
more (counted from the last map, else asked of the shop), the map is read by an export instead:

1. a sync finds no fresh map: it starts the export, stores its id (``stock_exports``) and ends
   with ``waiting``; the job ``await_export`` then polls it on RQ's schedule, never blocking a
   worker while the platform works, and enqueues the sync again once it has finished;
2. the next sync finds the export finished and streams its items into the map in batches
   (``store.stock_exports.replace_map``), then plans and writes as always.

Every step is idempotent and survives a restart: the export's id is in the database before any
later step, a sync that finds one running polls it instead of starting another, and a start
whose answer was lost is adopted by the platform adapter. A failed or expired export is recorded
with its reason; after ``MAX_FAILURES`` in a row the map is read page by page, as is the map of
a platform without exports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from rq import Retry, get_current_job

from integrations.errors import NotFoundError, RetryableError
from integrations.platforms import Platform
from jobs.parties import platform_for
from jobs.queues import enqueue_once, job_is_live
from jobs.runtime import Runtime, get_runtime
from store import stock as stock_store
from store import stock_exports
from store.db import transaction
from store.models import Shop, utcnow
from store.orders import as_utc

log = logging.getLogger(__name__)

MAX_FAILURES = 2  # exports failed in a row before a run reads the map page by page
MAX_RUNNING = timedelta(hours=6)  # an export still running after this is given up
POLL_SECONDS = (2, 3, 5, 10, 15, 30)  # between status checks, growing with the export's age
BUSY_SECONDS = 60  # the platform runs another export of ours (not this map): try again after


@dataclass(frozen=True)
class MapStep:
    """What the map step of one sync came to.

    ``read``: the map was replaced from an export, as of ``read_at``; ``waiting``: an export is
    running (nothing else to do now); ``paged``: read the map page by page (``reason`` says why
    when an export was given up).
    """

    state: str
    read_at: datetime | None = None
    items: int = 0
    reason: str = ""
    export_id: str = ""


def wants_export(runtime: Runtime, shop_id: int, platform: Platform) -> bool:
    """Whether the shop's map is large enough to be read by an export."""
    if not platform.has_stock_export():
        return False
    threshold = runtime.settings.stock_bulk_threshold
    with runtime.sessions() as session:
        known = stock_exports.map_size(session, shop_id)
    if known:
        return known >= threshold
    return platform.catalogue_size(max(threshold, 1)) >= threshold


def refresh_map(runtime: Runtime, shop_id: int, platform: Platform, location_id: str) -> MapStep:
    """Advance the shop's export one step: start it, check it, or read it into the map."""
    with runtime.sessions() as session:
        row = stock_exports.open_export(session, shop_id)
        running = (row.id, row.export_id, row.location_id, as_utc(row.started_at)) if row else None
    if running is None:
        if not wants_export(runtime, shop_id, platform):
            return MapStep("paged")
        return _start(runtime, shop_id, platform, location_id)
    row_id, export_id, row_location, started_at = running
    if row_location != location_id:
        _finish(runtime, row_id, "abandoned", "the shop's location changed while it ran")
        return refresh_map(runtime, shop_id, platform, location_id)
    state = platform.stock_export(export_id)
    if state.state == "running":
        if started_at is not None and utcnow() - started_at > MAX_RUNNING:
            _finish(runtime, row_id, "abandoned", f"still running after {MAX_RUNNING}")
            return _after_failure(runtime, shop_id, platform, location_id)
        return MapStep("waiting", export_id=export_id, reason=f"{state.objects} object(s) so far")
    if state.state != "ready":
        _finish(runtime, row_id, "failed", state.reason or state.state)
        return _after_failure(runtime, shop_id, platform, location_id)
    read_at = started_at or utcnow()  # Shopify read each item during the run: its start is the safe side
    try:
        with transaction(runtime.sessions) as session:
            items = platform.stock_export_items(export_id)
            count = stock_exports.replace_map(session, shop_id, location_id, items, read_at)
            stock_exports.finish_export(session, row_id, "done", items=count)
    except NotFoundError as exc:  # expired before it was read: a new export
        _finish(runtime, row_id, "failed", str(exc))
        return _after_failure(runtime, shop_id, platform, location_id)
    log.info("shop %s: SKU map of %d item(s) read from export %s", shop_id, count, export_id)
    return MapStep("read", read_at=read_at, items=count, export_id=export_id)


def _start(runtime: Runtime, shop_id: int, platform: Platform, location_id: str) -> MapStep:
    started = platform.start_stock_export(location_id)
    if started.state == "busy":
        raise RetryableError(f"the shop is running another export: {started.reason}", retry_after=BUSY_SECONDS)
    with transaction(runtime.sessions) as session:
        stock_exports.start_export(session, shop_id, location_id, started.id)
    log.info("shop %s: SKU map export %s started", shop_id, started.id)
    return MapStep("waiting", export_id=started.id, reason="started")


def _after_failure(runtime: Runtime, shop_id: int, platform: Platform, location_id: str) -> MapStep:
    with runtime.sessions() as session:
        since = stock_store.last_map_refresh(session, shop_id)
        failures, reason = stock_exports.failures_in_a_row(session, shop_id, since)
    if failures >= MAX_FAILURES:
        log.warning("shop %s: %d SKU map exports failed (%s): reading it page by page", shop_id, failures, reason)
        return MapStep("paged", reason=f"{failures} export(s) failed in a row, the last: {reason}")
    return _start(runtime, shop_id, platform, location_id)


def _finish(runtime: Runtime, row_id: int, status: str, reason: str) -> None:
    with transaction(runtime.sessions) as session:
        stock_exports.finish_export(session, row_id, status, error=reason)


def poll_interval(started_at: datetime | None) -> int:
    """Seconds until the next status check: often at first, then every 30 s."""
    age = (utcnow() - started_at).total_seconds() if started_at else 0
    return POLL_SECONDS[min(int(age // 20), len(POLL_SECONDS) - 1)]


def await_export(shop_id: int) -> Retry | str:
    """The RQ job polling a shop's running export; enqueues the sync once it has finished.

    Returns a ``Retry`` (RQ runs it again after ``poll_interval``) while the export runs: only
    this job's own schedule, no worker held. Idempotent, and free to be lost: the cron's next
    sync of the shop checks the export too.
    """
    runtime = get_runtime()
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        row = stock_exports.open_export(session, shop_id)
        running = (row.export_id, as_utc(row.started_at)) if row else None
        platform = platform_for(runtime, shop) if shop is not None and running else None
    if running and platform is not None:
        state = platform.stock_export(running[0])
        if state.state == "running" and utcnow() - (running[1] or utcnow()) <= MAX_RUNNING:
            return _again(poll_interval(running[1]))
    sync_id = f"stock-sync-{shop_id}"
    if enqueue_once(runtime, "stock", "jobs.stock.sync_shop", shop_id, job_id=sync_id, job_timeout=1800):
        return "export finished: sync enqueued"
    if job_is_live(runtime, sync_id):
        return _again(POLL_SECONDS[0])  # the sync that started it has not ended yet
    return "export finished"


def _again(seconds: int) -> Retry:
    job = get_current_job()
    return Retry(max=((job.number_of_retries or 0) if job else 0) + 1, interval=seconds)
