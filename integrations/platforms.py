"""The interface every shop platform implements, and its registry.

Jobs ask ``get(shop.platform)`` for an adapter and read the same for every shop; only the
adapters know Shopify's or WooCommerce's shapes. ``ShopAccess`` is the decrypted view of a shop
row that an adapter needs (no ORM object crosses into ``integrations/``).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from integrations.locations import RiskAssessment, ShopLocation
from integrations.model import Order, Shipment
from integrations.registry import Registry


@dataclass(frozen=True)
class ShopAccess:
    """What an adapter may know of a shop: ids, its decrypted credentials and its settings."""

    id: int
    platform: str
    domain: str
    credentials: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlatformContext:
    http: requests.Session
    settings: Any  # config.Settings
    redis: Any = None


@dataclass(frozen=True)
class OrderEvent:
    """A platform delivery about one order: the order as of that delivery, or only its id when deleted."""

    platform_order_id: str
    order: Order | None  # None: the platform deleted it (treated as cancelled)
    deleted: bool = False


@dataclass(frozen=True)
class UnreadableOrder:
    """An order ``orders_modified_since`` found but could not map to an ``Order`` (a payload the
    normaliser refuses). Yielded in its place so one bad order neither stops reconciliation nor
    vanishes: the caller reports it and reads the rest."""

    platform_order_id: str
    updated_at: datetime | None
    error: str


@dataclass(frozen=True)
class TrackingWrite:
    """What the platform recorded for a parcel: its own fulfilment id (or note id)."""

    platform_fulfilment_id: str
    created: bool  # False when an existing one was found and reused


@dataclass(frozen=True)
class StockChange:
    """One SKU's quantity to show, with what we believe the shop holds now (None: unknown).

    ``item_id`` is the platform's own id of the SKU's stock record, as ``stock_items`` returned it
    ("" when the caller has no map: the adapter then looks the SKU up itself).
    """

    sku: str
    quantity: int
    expected: int | None = None
    item_id: str = ""


@dataclass(frozen=True)
class StockWrite:
    """What a platform did with one sync's changes: written SKUs, and skipped ones with why.

    ``stale``: SKUs not written because the shop did not hold ``expected``, with the quantity it
    holds now (read back after the refusal); the caller decides what to write instead.
    """

    written: Mapping[str, int]
    skipped: Mapping[str, str]  # sku → reason: unknown SKU, duplicate SKU, not managed, refused: …
    calls: int = 0
    stale: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StockItem:
    """One item of the shop's catalogue as the stock sync maps it (see ``Platform.stock_items``)."""

    sku: str
    item_id: str  # the platform's id of the item's stock record (Shopify: InventoryItem GID)
    managed: bool = True  # the platform tracks this item's quantity
    quantity: int | None = None  # what the shop shows at the location asked for; None: not stocked there


@dataclass(frozen=True)
class StockExport:
    """A platform-side export of the whole SKU map (Shopify: a bulk operation), read when ready.

    ``state``: ``running`` (ask again later), ``ready`` (``stock_export_items`` streams it),
    ``failed`` (``reason`` says why), ``busy`` (the platform runs another export: none started).
    """

    id: str
    state: str
    reason: str = ""
    objects: int = 0
    empty: bool = False  # ready with nothing in it


@dataclass(frozen=True)
class CatalogueChange:
    """What a product / inventory-item delivery says changed: SKUs and items to look up again,
    and items the shop deleted (see ``Platform.catalogue_change``)."""

    skus: frozenset[str] = frozenset()
    item_ids: frozenset[str] = frozenset()  # same ids as ``StockItem.item_id``
    deleted_item_ids: frozenset[str] = frozenset()


class Platform(abc.ABC):
    """A shop platform as the pipeline uses it."""

    name: str = ""

    def __init__(self, shop: ShopAccess, context: PlatformContext):
        self.shop = shop
        self.context = context

    @classmethod
    @abc.abstractmethod
    def event_kind(cls, topic: str) -> str:
        """``order``, ``lifecycle``, ``inventory`` or ``ignored`` for a stored delivery's topic."""

    @abc.abstractmethod
    def parse_order_event(self, topic: str, body: bytes) -> OrderEvent:
        """Normalise an order delivery; raises ``marshmallow.ValidationError`` or ``ValueError``."""

    def write_tracking(
        self, order_platform_id: str, shipment: Shipment, lines: Iterable[Mapping[str, Any]]
    ) -> TrackingWrite:
        """Record a parcel and its tracking on the shop, exactly once.

        ``lines`` are the order's lines (``platform_line_id``, ``sku``, ``quantity``) so the adapter
        can place the parcel's SKUs on the platform's own line ids. Idempotent: a repeat finds
        what the first call wrote (by tracking number) and returns it with ``created=False``.
        """
        raise NotImplementedError(f"{self.name} tracking write-back is not implemented yet")

    def update_tracking(self, order_platform_id: str, platform_fulfilment_id: str, shipment: Shipment) -> TrackingWrite:
        """Correct the tracking (number, carrier, URL) of a parcel written before."""
        raise NotImplementedError(f"{self.name} tracking correction is not implemented yet")

    def write_stock(self, location_id: str, changes: Sequence[StockChange], idempotency_key: str) -> StockWrite:
        """Set the available quantity of each change's item at ``location_id``, as one sync run's write.

        Compare-and-set: a change whose ``expected`` is not None is written only if the shop holds
        exactly ``expected``; otherwise nothing is written for it and it comes back in
        ``StockWrite.stale`` with the quantity the shop holds now. Other refusals (item gone, not
        managed) come back in ``skipped`` with the reason. ``idempotency_key`` is
        ``<sync run id>-<attempt>-<nonce>``: a platform with idempotent writes derives one key per
        request from it, so re-sending a request whose answer was lost changes nothing more.
        Raises ``RetryableError`` (nothing or only whole requests written), ``AuthError``.
        """
        raise NotImplementedError(f"{self.name} stock write is not implemented yet")

    def stock_items(self, location_id: str, skus: Sequence[str] | None = None) -> list[StockItem]:
        """The shop's items that carry a SKU, for the SKU map the stock sync writes by.

        Every item (``skus`` None) or only the items whose SKU is in ``skus`` (exact match; an
        unknown SKU is simply absent). Items sharing a SKU are each listed: the caller reports the
        duplicate and never guesses. ``quantity`` is what the shop shows as available at
        ``location_id`` (a platform with a single stock figure ignores the location), None when
        the item is not stocked there; ``managed`` False when the platform does not track the
        item's stock (the sync then leaves it alone). Raises ``RetryableError``, ``AuthError``.
        """
        raise NotImplementedError(f"{self.name} SKU map is not implemented yet")

    def has_stock_export(self) -> bool:
        """Whether ``start_stock_export`` works for this shop (if not, the map is always paged)."""
        return False

    def catalogue_size(self, at_least: int) -> int:
        """How many items the shop has, counted up to ``at_least`` (only asked when
        ``has_stock_export``: to choose between an export and pages)."""
        raise NotImplementedError(f"{self.name} has no stock export")

    def start_stock_export(self, location_id: str) -> StockExport:
        """Start an export of every item with a SKU and its quantity at ``location_id`` (the same
        items ``stock_items`` lists), or adopt the one of ours already running. Never blocks."""
        raise NotImplementedError(f"{self.name} has no stock export")

    def stock_export(self, export_id: str) -> StockExport:
        """Where an export started by ``start_stock_export`` is now."""
        raise NotImplementedError(f"{self.name} has no stock export")

    def stock_export_items(self, export_id: str) -> Iterable[StockItem]:
        """A ready export's items, streamed (never the whole file in memory). Raises
        ``NotFoundError`` when its result is gone (expired), ``RetryableError`` on a broken download."""
        raise NotImplementedError(f"{self.name} has no stock export")

    def catalogue_change(self, topic: str, body: bytes) -> CatalogueChange:
        """Read a stored ``inventory``-kind delivery (``event_kind``) for the SKU map: the SKUs it
        names (new and current), the ids of the items it is about, and the items it deletes. The
        stock job then drops deleted items and looks the rest up with ``stock_items``. Raises
        ``ValueError`` on a payload it cannot read."""
        raise NotImplementedError(f"{self.name} catalogue deliveries are not implemented yet")

    def orders_modified_since(self, since: datetime) -> Iterable[Order | UnreadableOrder]:
        """Orders changed since ``since`` (reconciliation of missed webhooks), oldest change first,
        each exactly as the platform's webhook normaliser gives it (``jobs.decide`` must not be able
        to tell a polled order from a delivered one); an order it cannot map comes as
        ``UnreadableOrder``. Raises ``RetryableError``, ``AuthError``, ``InvalidRequestError``."""
        raise NotImplementedError(f"{self.name} reconciliation is not implemented yet")

    def locations(self) -> list[ShopLocation]:
        """The shop's active locations, for the merchant to map the provider's centres onto
        (``jobs.locations``). Raises ``RetryableError``, ``AuthError``."""
        raise NotImplementedError(f"{self.name} locations are not implemented yet")

    def order_risk(self, platform_order_id: str) -> RiskAssessment | None:
        """The platform's fraud risk of an order, read before pushing when the shop's
        ``hold_high_risk`` rule is on; None when the platform assesses no risk (no call made).
        Raises ``RetryableError``, ``AuthError``, ``NotFoundError``."""
        return None

    def verify_access(self) -> str:
        """One live call with the stored credentials (after connecting); raises ``AuthError``."""
        raise NotImplementedError(f"{self.name} access check is not implemented yet")

    def ensure_webhooks(self, rotate_secret: bool = False) -> WebhookReport:
        """Create, repair or re-activate our webhook subscriptions on the shop. Idempotent."""
        raise NotImplementedError(f"{self.name} webhook upkeep is not implemented yet")


@dataclass
class WebhookReport:
    """What a webhook check found and did; ``problems`` are told to the merchant."""

    created: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


PLATFORMS: dict[str, str] = {
    "shopify": "integrations.shopify.platform:ShopifyPlatform",
    "woocommerce": "integrations.woocommerce.platform:WooCommercePlatform",
}


_registry = Registry("platform", Platform, PLATFORMS)
get = _registry.get
names = _registry.names
check = _registry.check
