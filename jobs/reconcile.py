"""Reconciliation: orders whose webhook never came are found by asking the shop what changed.

WooCommerce never re-sends a failed delivery, drops deliveries while a webhook is disabled, and
may deliver hours late (reference §1.5, §1.6); so on a schedule each active shop's platform is
asked for the orders modified since a cursor, and each one goes through the same decision as a
webhook.

How they enter the pipeline: directly, through ``jobs.orders.apply_order_event`` inside one
transaction per order, not as a synthetic inbox row. The inbox keeps raw bodies whose signature
we verified; a polled order was fetched by us, has no body of that kind, and needs no replay
(the next run fetches it again). The decision is idempotent on the order's state and
``updated_at`` (an order already applied is ``UPDATE`` or ``STALE``), so an order seen by both
a webhook and a poll is pushed once. The cursor moves to the newest change seen, and each run
asks from a minute before it: ``date_modified_gmt`` has one-second resolution, clocks differ a
little, and a page may shift while we read it; the overlap costs only re-reading a few orders.

Shopify too (its docs say not to rely on webhooks alone): its adapter reads GraphQL
``orders(query: "updated_at:>…")``, paged and paced by cost. Each run also looks the other way
(``jobs.drift``): parcels the provider shipped that Relais never recorded, pushed orders the
provider lacks, parcels whose tracking is not on the shop; and stores one drift report per shop
(``shop_sync.drift_report``). ``flask reconcile SHOP`` runs it now and prints it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from integrations.errors import AuthError, InvalidRequestError, RetryableError
from integrations.outbound import merchant_text
from integrations.platforms import OrderEvent, Platform, UnreadableOrder
from jobs import drift
from jobs.orders import FollowUp, apply_order_event, enqueue_follow_ups
from jobs.parties import platform_for
from jobs.queues import for_each_active_shop
from jobs.runtime import Runtime, get_runtime
from store import orders as order_store
from store.db import transaction
from store.models import Order, Shop, utcnow
from store.sync_models import sync_row, tell_merchant

log = logging.getLogger(__name__)

RECONCILE_INTERVAL = 600  # seconds
OVERLAP = timedelta(minutes=1)


def reconcile_all() -> int:
    """Cron: one reconciliation job per active shop."""
    return for_each_active_shop(get_runtime(), "maintenance", "jobs.reconcile.reconcile_shop", "reconcile")


def reconcile_shop(shop_id: int) -> str:
    """Feed every order the shop changed since the cursor through the order pipeline, check the
    provider's side, and store the run's drift report."""
    return run(shop_id)[0]


def run(shop_id: int) -> tuple[str, drift.DriftReport | None]:
    """One reconciliation of the shop, now, in this process: what the shop side did, and the
    drift report stored for it (None for an inactive shop). The repairs it decides are jobs."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.status != "active":
            return "shop inactive", None
        row = sync_row(session, shop_id)
        since = order_store.as_utc(row.orders_cursor) or order_store.as_utc(shop.created_at) or utcnow()
        platform = platform_for(runtime, shop)
        report = drift.DriftReport(shop=shop.domain, platform=shop.platform, provider=shop.provider, since=since)
    outcome = _shop_side(shop_id, platform, since, report)
    drift.check_provider(runtime, shop_id, report)
    drift.check_unpushed(runtime, shop_id, report)
    drift.check_unwritten_parcels(runtime, shop_id, report)
    drift.save(runtime, shop_id, report)
    return outcome, report


def _shop_side(shop_id: int, platform: Platform, since: datetime, report: drift.DriftReport) -> str:
    runtime = get_runtime()
    newest = since
    seen = found = 0
    try:
        for order in platform.orders_modified_since(since - OVERLAP):
            seen += 1
            report.checked["shop_orders"] += 1
            if isinstance(order, UnreadableOrder):
                _unreadable(runtime, shop_id, order, report)
                newest = max(newest, order_store.as_utc(order.updated_at) or newest)
                continue
            follow_ups: list[FollowUp] = []
            with transaction(runtime.sessions) as session:
                shop = session.get(Shop, shop_id)
                known = order_store.find(session, shop_id, order.platform_order_id) is not None
                follow_ups = apply_order_event(session, shop, OrderEvent(order.platform_order_id, order), None)
                row = order_store.find(session, shop_id, order.platform_order_id)
                if not known and row is not None:
                    found += 1
                    order_store.note(row, "found by reconciliation: its webhook never arrived")
                _report_order(report, row, known, follow_ups)
            enqueue_follow_ups(runtime, follow_ups)
            newest = max(newest, order_store.as_utc(order.updated_at) or newest)
    except NotImplementedError as exc:
        report.notes.append(f"the shop's orders were not checked: {exc}")
        return "not supported"
    except (RetryableError, AuthError, InvalidRequestError) as exc:
        with transaction(runtime.sessions) as session:
            tell_merchant(session, shop_id, f"orders could not be reconciled: {merchant_text(exc)}")
        log.warning("shop %s: reconciliation stopped: %s", shop_id, merchant_text(exc))
        _advance(shop_id, since)  # the next run reads it all again: every step is idempotent
        report.notes.append(f"the shop's orders were checked only in part: {merchant_text(exc)}")
        return "failed"
    _advance(shop_id, newest)
    if found:
        log.warning("shop %s: reconciliation found %d orders whose webhook never arrived", shop_id, found)
    return f"{seen} orders checked, {found} found missing"


def _report_order(report: drift.DriftReport, row: Order | None, known: bool, follow_ups: list[FollowUp]) -> None:
    """What the shop had that Relais lacked: a whole order, or a change that mattered (one that
    queued a push or a cancel). Changes that decide nothing new are not drift."""
    if row is None:
        return
    name = drift.label(row)
    queued = {"push": "push to the provider enqueued", "cancel": "cancel at the provider enqueued"}
    what = "; ".join(queued[f.kind] for f in follow_ups if f.kind in queued)
    if not known:
        report.add_missing("orders_not_received", name, f"recorded as {row.state}")
        report.add_repaired(name, f"recorded ({row.state})" + (f"; {what}" if what else ""))
    elif what:
        report.add_missing("changes_not_received", name, f"now {row.state}")
        report.add_repaired(name, what)


def _unreadable(runtime: Runtime, shop_id: int, order: UnreadableOrder, report: drift.DriftReport) -> None:
    with transaction(runtime.sessions) as session:
        known = order_store.find(session, shop_id, order.platform_order_id) is not None
    if not known:
        report.add_missing("orders_not_received", order.platform_order_id, "the shop's copy could not be read")
    report.add_still_wrong(order.platform_order_id, "not reconciled", order.error)


def _advance(shop_id: int, cursor: datetime) -> None:
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        row = sync_row(session, shop_id)
        row.orders_cursor = cursor
        row.reconciled_at = utcnow()
