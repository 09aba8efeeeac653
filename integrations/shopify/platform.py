"""Shopify as a ``Platform``: what the jobs ask of a Shopify shop."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from integrations.carriers import resolve
from integrations.errors import AuthError, NotFoundError
from integrations.locations import RiskAssessment, ShopLocation
from integrations.model import Order, Shipment
from integrations.platforms import (
    CatalogueChange,
    OrderEvent,
    Platform,
    StockChange,
    StockExport,
    StockItem,
    StockWrite,
    TrackingWrite,
    UnreadableOrder,
    WebhookReport,
)
from integrations.shopify import bulk, fulfilment, inventory, order_edits, webhooks
from integrations.shopify.admin import AdminClient
from integrations.shopify.bulk_result import read_lines
from integrations.shopify.orders import parse_order


class ShopifyPlatform(Platform):
    name = "shopify"

    @classmethod
    def event_kind(cls, topic: str) -> str:
        if topic in webhooks.ORDER_TOPICS or topic == order_edits.TOPIC:
            return "order"
        if topic in webhooks.LIFECYCLE_TOPICS:
            return "lifecycle"
        if topic.startswith(("inventory_items/", "products/")):
            return "inventory"
        if topic in webhooks.FULFILMENT_ORDER_TOPICS:
            return "fulfilment_order"
        if topic == webhooks.RISK_TOPIC:
            return "risk"
        return "ignored"

    def parse_order_event(self, topic: str, body: bytes) -> OrderEvent:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("order payload is not a JSON object")
        if topic == order_edits.TOPIC:  # the edit, not the order: read the order as it is now
            order = order_edits.order_after_edit(self.admin(), order_edits.edited_order_id(payload))
            return OrderEvent(platform_order_id=order.platform_order_id, order=order)
        order = parse_order(payload)
        return OrderEvent(platform_order_id=order.platform_order_id, order=order)

    def admin(self) -> AdminClient:
        """The shop's GraphQL Admin client (through SHOPIFY_ADMIN_URL)."""
        token = self.shop.credentials.get("access_token", "")
        if not token:
            raise AuthError(f"no access token for {self.shop.domain}: install the app again")
        # Expiring offline tokens (installable-app work): on a 401 the client refreshes the token
        # once and sends the call again. jobs.tokens stores the new pair (it owns the database),
        # hence this one import from jobs, kept local to where the client is built.
        from integrations.shopify.refreshing import RefreshingAdminClient
        from jobs.tokens import refresher

        settings = self.context.settings
        if self.sandbox_shop:
            settings = settings.with_(shopify_admin_url=settings.sandbox_base_url + "/shopify/{shop}")
        return RefreshingAdminClient(
            self.shop.domain, token, settings, self.context.http, refresh=refresher(self.shop.id)
        )

    def orders_modified_since(self, since: datetime) -> Iterator[Order | UnreadableOrder]:
        """Orders updated after ``since``, oldest change first, mapped as their webhooks would be
        (GraphQL ``orders(query: "updated_at:>…")``, paged and paced by cost: ``shopify.reconcile``)."""
        from integrations.shopify.reconcile import orders_changed_since

        if self.sandbox_shop:  # the stand-in builds its orders from Relais' own: none can be missing
            raise NotImplementedError("the sandbox shop has no order list to reconcile")
        return orders_changed_since(self.admin(), since)

    def write_tracking(
        self, order_platform_id: str, shipment: Shipment, lines: Iterable[Mapping[str, Any]]
    ) -> TrackingWrite:
        """One Shopify fulfilment per parcel, at the shop's mapped location, customer notified per setting."""
        parcel = fulfilment.Parcel(tracking=self._tracking(shipment), lines=place_on_lines(shipment, lines))
        return fulfilment.write_parcel(
            self.admin(),
            order_platform_id,
            parcel,
            self.shop.settings.get("location_id", ""),
            notify_customer=bool(self.shop.settings.get("notify_customer", True)),
        )

    def update_tracking(self, order_platform_id: str, platform_fulfilment_id: str, shipment: Shipment) -> TrackingWrite:
        return fulfilment.update_tracking(
            self.admin(),
            platform_fulfilment_id,
            self._tracking(shipment),
            notify_customer=bool(self.shop.settings.get("notify_customer", True)),
        )

    def write_stock(self, location_id: str, changes: Sequence[StockChange], idempotency_key: str) -> StockWrite:
        """``available`` at the location by compare-and-set, ≤250 per call (``shopify.inventory``)."""
        return inventory.set_available(self.admin(), location_id, changes, idempotency_key)

    def stock_items(self, location_id: str, skus: Sequence[str] | None = None) -> list[StockItem]:
        return inventory.stock_items(self.admin(), location_id, skus)

    def has_stock_export(self) -> bool:
        return not self.sandbox_shop  # the development stand-in has no bulk operations

    def catalogue_size(self, at_least: int) -> int:
        return bulk.catalogue_size(self.admin(), at_least)

    def start_stock_export(self, location_id: str) -> StockExport:
        """A bulk query over every inventory item (``shopify.bulk``): 10 points, whatever the size."""
        return bulk.start(self.admin(), bulk.stock_document(location_id))

    def stock_export(self, export_id: str) -> StockExport:
        return bulk.as_export(bulk.status(self.admin(), export_id))

    def stock_export_items(self, export_id: str) -> Iterator[StockItem]:
        reading = bulk.status(self.admin(), export_id)  # a fresh URL: signed links expire
        if reading.status == "COMPLETED" and not reading.url:
            return
        if reading.status != "COMPLETED" or not reading.url:
            raise NotFoundError(f"bulk operation {export_id} has no result ({reading.status.lower()})")
        yield from bulk.stock_items(read_lines(reading.url, self.context.settings))

    def catalogue_change(self, topic: str, body: bytes) -> CatalogueChange:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError(f"{topic} payload is not a JSON object")
        return inventory.catalogue_change(topic, payload)

    def locations(self) -> list[ShopLocation]:
        """Active locations by name (GraphQL ``locations``: ``shopify.locations``)."""
        from integrations.shopify.locations import list_locations

        return list_locations(self.admin())

    def order_risk(self, platform_order_id: str) -> RiskAssessment:
        """The order's risk summary (GraphQL ``order.risk``: ``shopify.risk``)."""
        from integrations.shopify.risk import order_risk

        return order_risk(self.admin(), platform_order_id)

    def ensure_webhooks(self, rotate_secret: bool = False) -> WebhookReport:
        """Shop-specific subscriptions to the topics of shopify.app.toml that it does not already
        subscribe app-wide (installable-app work). Shopify signs every delivery with the app
        secret: there is no per-shop secret to rotate."""
        from integrations.shopify import subscriptions
        from integrations.shopify.app_config import app_config

        if self.sandbox_shop:
            return WebhookReport()  # the development stand-in has no subscriptions: the demo posts itself
        address = self.context.settings.public_url.rstrip("/") + "/webhooks/shopify"
        # Topics the deployed TOML subscribes app-wide get no shop-level copy (each event would arrive twice).
        app_wide = subscriptions.app_wide_topics(self.context.settings.shopify_api_key)
        found = subscriptions.ensure(self.admin(), address, app_config().topics, app_wide)
        return WebhookReport(created=found.created, problems=[f"{t}: {m}" for t, m in found.refused.items()])

    @property
    def sandbox_shop(self) -> bool:
        """A development stand-in store (``sandbox/shop.py``): honoured only where the sandbox is
        enabled, so a shop row flagged so in production still talks to the real Shopify."""
        return bool(self.shop.credentials.get("sandbox_shop")) and self.context.settings.sandbox_enabled

    @staticmethod
    def _tracking(shipment: Shipment):  # type: ignore[no-untyped-def]
        return resolve(shipment.carrier, shipment.tracking_number, shipment.tracking_url)


def place_on_lines(shipment: Shipment, lines: Iterable[Mapping[str, Any]]) -> tuple[fulfilment.ParcelLine, ...]:
    """The parcel's SKU quantities placed on the order's own line ids (a SKU on two lines fills the
    first, then the next); a SKU the order does not have is kept by SKU alone."""
    remaining = [dict(line) for line in lines]
    placed: list[fulfilment.ParcelLine] = []
    for item in shipment.lines:
        left = item.quantity
        for line in remaining:
            if left <= 0:
                break
            if line["sku"] != item.sku or line["quantity"] <= 0:
                continue
            take = min(left, int(line["quantity"]))
            placed.append(
                fulfilment.ParcelLine(quantity=take, platform_line_id=str(line["platform_line_id"]), sku=item.sku)
            )
            line["quantity"] -= take
            left -= take
        if left > 0:
            placed.append(fulfilment.ParcelLine(quantity=left, sku=item.sku))
    return tuple(placed)
