"""Which shop location(s) the provider's stock goes to, and the two lists the merchant maps.

A shop with one location needs no setting: the stock sync writes there. A shop with several
must say which (``location_id``, or ``stock_locations`` mapping each provider centre to a shop
location); until it does the sync refuses, naming every location, and writes nothing: picking
"the first one" silently stocks the wrong warehouse (reference/shopify.md, multi-location).

``stock_target`` is the one place that answers "where does the stock go" for a shop: a mode that
owns its location (Shopify fulfilment-service mode, where the stock location is the service's
own) plugs in there, before the merchant's settings are read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from integrations.errors import AuthError, ConfigError, InvalidRequestError, NotFoundError, RetryableError
from integrations.locations import FulfilmentCentre, ShopLocation, describe
from jobs.parties import platform_for, provider_for
from jobs.queues import enqueue_once
from jobs.runtime import Runtime, get_runtime
from store.models import Shop
from store.shops import has_provider

log = logging.getLogger(__name__)

FRESH_SECONDS = 60  # the page is re-rendered after every form post: one Shopify call a minute at most
KEEP_SECONDS = 3600  # an older list is still shown (while a fresh one is read) rather than none


class LocationChoiceNeeded(ConfigError):
    """The shop has several locations and no setting says which one the stock belongs to."""

    def __init__(self, locations: list[ShopLocation]) -> None:
        self.locations = locations
        super().__init__(
            f"the shop has {len(locations)} locations ({describe(locations)}): choose on the settings "
            "page which one the provider's stock goes to (or map each fulfilment centre to one); nothing written"
        )


@dataclass(frozen=True)
class StockTarget:
    """Where one sync writes: the shop locations, and provider centre → shop location
    (empty: every centre counts towards the single location)."""

    locations: tuple[str, ...]
    mapping: Mapping[str, str] = field(default_factory=dict)


def stock_target(settings: Mapping[str, Any], list_locations: Callable[[], list[ShopLocation]]) -> StockTarget:
    """The shop location(s) the provider's stock is written to. ``list_locations`` is called
    only when no setting decides (one live call). Raises ``LocationChoiceNeeded``, ``ConfigError``
    (no active location), and whatever ``list_locations`` raises."""
    if settings.get("fulfilment_mode") == "service" and settings.get("location_id"):
        # Shopify lets a fulfilment service manage stock at its own location only.
        return StockTarget((str(settings["location_id"]),))
    mapping = {str(k): str(v) for k, v in (settings.get("stock_locations") or {}).items() if v}
    if mapping:
        return StockTarget(tuple(sorted(set(mapping.values()))), mapping)
    chosen = str(settings.get("location_id") or "")
    if chosen:
        return StockTarget((chosen,))
    found = list_locations()
    if len(found) == 1:
        return StockTarget((found[0].id,))
    if not found:
        raise ConfigError("the shop has no active location to write the provider's stock to")
    raise LocationChoiceNeeded(found)


@dataclass
class Listing:
    """Both lists for the merchant, each with why it could not be read ("" when it was);
    ``pending`` while the first read of them is still queued (the page says so)."""

    locations: list[ShopLocation]
    centres: list[FulfilmentCentre]
    locations_error: str = ""
    centres_error: str = ""
    pending: bool = False


def listing(runtime: Runtime, shop_id: int, *, fresh: bool = False) -> Listing:
    """The shop's locations and its provider's centres.

    ``fresh`` (the CLI): read both now. Otherwise (the page) from Redis: a list read less than
    ``FRESH_SECONDS`` ago is served as is, an older one is served while a job reads it again,
    and none at all comes back ``pending`` with that job queued. So the page never waits on
    Shopify (whose client retries for seconds when it is down) and calls it at most once a minute.
    Never raises for the parties: a list that cannot be read is empty with the reason.
    """
    key = _key(runtime, shop_id)
    if fresh or key is None:
        return _read(runtime, shop_id)
    raw = runtime.redis.get(key)
    cached = json.loads(raw) if raw is not None else None
    if cached is None or time.time() - float(cached["at"]) > FRESH_SECONDS:
        enqueue_once(runtime, "stock", "jobs.locations.refresh", shop_id, job_id=f"locations-{shop_id}")
    if cached is None:
        return Listing([], [], pending=True)
    return Listing(
        [ShopLocation(**item) for item in cached["locations"]],
        [FulfilmentCentre(**item) for item in cached["centres"]],
        cached["locations_error"],
        cached["centres_error"],
    )


def refresh(shop_id: int) -> str:
    """The RQ job: read both lists and keep them for the page. Idempotent."""
    listed = _read(get_runtime(), shop_id)
    return f"{len(listed.locations)} location(s), {len(listed.centres)} centre(s)"


def _key(runtime: Runtime, shop_id: int) -> str | None:
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        # The provider is part of the key: a new provider's centres are read at once.
        return f"relais:locations:{shop_id}:{shop.provider or '-'}" if shop is not None else None


def _read(runtime: Runtime, shop_id: int) -> Listing:
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None:
            return Listing([], [], "no such shop", "no such shop")
        platform = platform_for(runtime, shop)
        provider = provider_for(runtime, shop) if has_provider(shop) else None
        key = f"relais:locations:{shop_id}:{shop.provider or '-'}"
    locations, locations_error = _attempt(lambda: [loc.__dict__ for loc in platform.locations()])
    if provider is None:
        centres: list[dict[str, Any]] = []
        centres_error = "the shop has no fulfilment provider yet"
    else:
        centres, centres_error = _attempt(lambda: [c.__dict__ for c in provider.fulfilment_centres()])
    record = {
        "at": time.time(),
        "locations": locations,
        "centres": centres,
        "locations_error": locations_error,
        "centres_error": centres_error,
    }
    runtime.redis.set(key, json.dumps(record), ex=KEEP_SECONDS)
    return Listing(
        [ShopLocation(**item) for item in locations],
        [FulfilmentCentre(**item) for item in centres],
        locations_error,
        centres_error,
    )


def _attempt(load: Callable[[], list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], str]:
    try:
        return load(), ""
    except RetryableError as exc:
        return [], f"could not be reached: {exc}"
    except AuthError as exc:
        return [], f"refused our credentials: {exc}"
    except (InvalidRequestError, NotFoundError, ConfigError, NotImplementedError) as exc:
        return [], str(exc)
