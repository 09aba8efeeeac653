"""The interface every shop platform implements, and its registry.

Jobs ask ``get(shop.platform)`` for an adapter and read the same for every shop; only the
adapters know Shopify's or WooCommerce's shapes. ``ShopAccess`` is the decrypted view of a shop
row that an adapter needs (no ORM object crosses into ``integrations/``).
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from integrations.errors import ConfigError
from integrations.model import Order, Shipment


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
class TrackingWrite:
    """What the platform recorded for a parcel: its own fulfilment id (or note id)."""

    platform_fulfilment_id: str
    created: bool  # False when an existing one was found and reused


@dataclass(frozen=True)
class StockChange:
    """One SKU's quantity to show, with what we believe the shop holds now (None: unknown)."""

    sku: str
    quantity: int
    expected: int | None = None


@dataclass(frozen=True)
class StockWrite:
    """What a platform did with one sync's changes: written SKUs, and skipped ones with why."""

    written: Mapping[str, int]
    skipped: Mapping[str, str]  # sku → reason: unknown SKU, duplicate SKU, not managed, refused: …
    calls: int = 0


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
        """Record a parcel and its tracking on the shop, exactly once (later issue)."""
        raise NotImplementedError(f"{self.name} tracking write-back is not implemented yet")

    def write_stock(self, location_id: str, changes: Sequence[StockChange], idempotency_key: str) -> StockWrite:
        """Set the available quantity of each SKU at ``location_id`` (the stock issue)."""
        raise NotImplementedError(f"{self.name} stock write is not implemented yet")

    def orders_modified_since(self, since: datetime) -> Iterable[Order]:
        """Orders changed since ``since`` (reconciliation of missed webhooks)."""
        raise NotImplementedError(f"{self.name} reconciliation is not implemented yet")


PLATFORMS: dict[str, str] = {
    "shopify": "integrations.shopify.platform:ShopifyPlatform",
}


def get(name: str) -> type[Platform]:
    try:
        target = PLATFORMS[name]
    except KeyError:
        raise ConfigError(f"unknown platform {name!r}; known: {', '.join(sorted(PLATFORMS))}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not issubclass(cls, Platform):
        raise ConfigError(f"{target} is not a Platform")
    return cls


def names() -> list[str]:
    return sorted(PLATFORMS)


def check() -> None:
    for name in PLATFORMS:
        get(name)
