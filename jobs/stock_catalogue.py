"""The shop's SKU map: built whole, patched from catalogue deliveries, and unknown SKUs looked up.

The map says which platform item a SKU is, so the sync writes by item id and never searches
per write. It is built whole on the first sync and again once a day (missed deliveries heal),
patched by product / inventory-item deliveries in between, and SKUs the provider reports but the
map lacks are looked up at most hourly (a new product, or Shopify's search index lagging behind
a delivery). Every read also records what the shop showed: the next compare-and-set's basis.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from integrations.platforms import Platform
from jobs.parties import platform_for
from jobs.runtime import Runtime
from store import stock as stock_store
from store.models import Shop, WebhookEvent, utcnow
from store.stock_models import SkuMapEntry

log = logging.getLogger(__name__)

UNKNOWN_LOOKUP_SECONDS = 3600  # at most one look-up of unknown SKUs per shop and hour
UNKNOWN_LOOKUP_MAX = 500


def look_up(
    session: Session,
    shop_id: int,
    platform: Platform,
    location_id: str,
    skus: Collection[str],
    forget_items: Collection[str] = (),
) -> int:
    """Replace the map's rows for ``skus`` (and for ``forget_items``) with what the platform lists now."""
    read_at = utcnow()
    items = platform.stock_items(location_id, sorted(skus)) if skus else []
    return stock_store.store_items(session, shop_id, location_id, items, read_at, skus, forget_items)


def look_up_unknown(
    runtime: Runtime, session: Session, shop_id: int, platform: Platform, location_id: str, unknown: Collection[str]
) -> int:
    """Look up SKUs the map lacks, at most hourly per shop (Redis ``SET NX EX`` guards the hour)."""
    if not unknown:
        return 0
    guard = f"relais:stock:unknown-lookup:{shop_id}"
    if not runtime.redis.set(guard, "1", nx=True, ex=UNKNOWN_LOOKUP_SECONDS):
        return 0
    return look_up(session, shop_id, platform, location_id, sorted(unknown)[:UNKNOWN_LOOKUP_MAX])


def has_map(session: Session, shop_id: int, location_id: str | None = None) -> bool:
    """Whether the shop has a SKU map (read at ``location_id``: a changed location needs a new one)."""
    where = [SkuMapEntry.shop_id == shop_id]
    if location_id is not None:
        where.append(SkuMapEntry.location_id == location_id)
    return bool(session.scalar(select(exists().where(*where))))


def handle_event(runtime: Runtime, session: Session, shop: Shop, event: WebhookEvent) -> str:
    """Apply a product / inventory-item delivery to the shop's map; returns what happened.

    Never writes stock: a changed map only changes what the next sync can write. Raises
    ``ValueError`` on an unreadable payload (the inbox keeps it, marked failed).
    """
    location = str((shop.settings or {}).get("location_id") or "")
    platform = platform_for(runtime, shop)
    try:
        change = platform.catalogue_change(event.topic, event.body)
    except NotImplementedError as exc:
        return f"stored ({exc})"
    except KeyError as exc:
        raise ValueError(f"{event.topic} payload lacks {exc}") from None
    if not has_map(session, shop.id):
        return "no SKU map yet: the first stock sync builds it"
    forgotten = sum(stock_store.forget_item(session, shop.id, item) for item in change.deleted_item_ids)
    affected = set(change.skus) | stock_store.skus_of_items(session, shop.id, change.item_ids)
    if not affected:
        return f"SKU map: {forgotten} item(s) removed"
    # The locations the shop's settings write to; without a setting (a one-location shop), those
    # the map was read at.
    mapped = {str(v) for v in ((shop.settings or {}).get("stock_locations") or {}).values()}
    locations = sorted((mapped | {location}) - {""})
    if not locations:
        read_at = select(SkuMapEntry.location_id).where(SkuMapEntry.shop_id == shop.id).distinct()
        locations = sorted(set(session.scalars(read_at)) - {""})
    if not locations:
        return "SKU map not refreshed: the shop has no stock location yet"
    listed = sum(look_up(session, shop.id, platform, loc, affected, change.item_ids) for loc in locations)
    log.info("shop %s: SKU map refreshed for %d SKU(s) after %s", shop.id, len(affected), event.topic)
    return f"SKU map: {len(affected)} SKU(s) looked up, {listed} item(s) listed, {forgotten} removed"
