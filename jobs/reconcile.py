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
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from integrations.errors import AuthError, InvalidRequestError, RetryableError
from integrations.platforms import OrderEvent
from jobs.orders import FollowUp, apply_order_event, enqueue_follow_ups
from jobs.parties import platform_for
from jobs.queues import for_each_active_shop
from jobs.runtime import get_runtime
from store import orders as order_store
from store.db import transaction
from store.models import Shop, utcnow
from store.sync_models import sync_row, tell_merchant

log = logging.getLogger(__name__)

RECONCILE_INTERVAL = 600  # seconds
OVERLAP = timedelta(minutes=1)


def reconcile_all() -> int:
    """Cron: one reconciliation job per active shop."""
    return for_each_active_shop(get_runtime(), "maintenance", "jobs.reconcile.reconcile_shop", "reconcile")


def reconcile_shop(shop_id: int) -> str:
    """Feed every order the shop changed since the cursor through the order pipeline."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.status != "active":
            return "shop inactive"
        row = sync_row(session, shop_id)
        since = order_store.as_utc(row.orders_cursor) or order_store.as_utc(shop.created_at) or utcnow()
        platform = platform_for(runtime, shop)
    newest = since
    seen = found = 0
    try:
        for order in platform.orders_modified_since(since - OVERLAP):
            seen += 1
            follow_ups: list[FollowUp] = []
            with transaction(runtime.sessions) as session:
                shop = session.get(Shop, shop_id)
                known = order_store.find(session, shop_id, order.platform_order_id) is not None
                follow_ups = apply_order_event(session, shop, OrderEvent(order.platform_order_id, order), None)
                row = order_store.find(session, shop_id, order.platform_order_id)
                if not known and row is not None:
                    found += 1
                    order_store.note(row, "found by reconciliation: its webhook never arrived")
            enqueue_follow_ups(runtime, follow_ups)
            newest = max(newest, order_store.as_utc(order.updated_at) or newest)
    except NotImplementedError:
        return "not supported"
    except (RetryableError, AuthError, InvalidRequestError) as exc:
        with transaction(runtime.sessions) as session:
            tell_merchant(session, shop_id, f"orders could not be reconciled: {exc}")
        log.warning("shop %s: reconciliation stopped: %s", shop_id, exc)
        _advance(shop_id, since)  # the next run reads it all again: every step is idempotent
        return "failed"
    _advance(shop_id, newest)
    if found:
        log.warning("shop %s: reconciliation found %d orders whose webhook never arrived", shop_id, found)
    return f"{seen} orders checked, {found} found missing"


def _advance(shop_id: int, cursor: datetime) -> None:
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        row = sync_row(session, shop_id)
        row.orders_cursor = cursor
        row.reconciled_at = utcnow()
