"""WooCommerce as a ``Platform``: what the jobs ask of a WooCommerce store.

The shop row's encrypted credentials hold ``consumer_key``, ``consumer_secret`` and
``webhook_secret``; ``shop.domain`` is the store's address (``https://shop.example``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from integrations.errors import AuthError
from integrations.locations import SINGLE_STORE_LOCATION, ShopLocation
from integrations.model import Order, Shipment
from integrations.outbound import OutboundPolicy
from integrations.platforms import (
    CatalogueChange,
    OrderEvent,
    Platform,
    StockChange,
    StockItem,
    StockWrite,
    TrackingWrite,
    WebhookReport,
)
from integrations.woocommerce import connect, echoes, inventory, refunds, tracking, webhooks
from integrations.woocommerce.catalogue import Catalogue
from integrations.woocommerce.client import WooClient
from integrations.woocommerce.orders import CANCEL_STATUSES, catalogue_ids, line_key, parse_order

CACHE_TTL = 3600  # namespaces and tracking providers: an hour (a plugin install shows up within it)


class WooCommercePlatform(Platform):
    name = "woocommerce"

    @classmethod
    def event_kind(cls, topic: str) -> str:
        if topic in webhooks.ORDER_TOPICS:
            return "order"
        if topic in webhooks.PRODUCT_TOPICS:
            return "inventory"
        return "ignored"

    # --- wiring ---------------------------------------------------------------------------------
    def client(self) -> WooClient:
        key = self.shop.credentials.get("consumer_key", "")
        secret = self.shop.credentials.get("consumer_secret", "")
        if not (key and secret):
            raise AuthError(f"no REST API keys for {self.shop.domain}: connect the store again")
        if not hasattr(self, "_client"):
            policy = OutboundPolicy.from_settings(self.context.settings)  # the store is merchant-given
            self._client = WooClient(
                self.shop.domain, key, secret, self.context.http, redis=self.context.redis, policy=policy
            )
        return self._client

    @property
    def catalogue(self) -> Catalogue:
        if not hasattr(self, "_catalogue"):
            self._catalogue = Catalogue(self.context.redis, self.shop.id)
        return self._catalogue

    def delivery_url(self) -> str:
        return f"{self.context.settings.public_url.rstrip('/')}/webhooks/woocommerce/{self.shop.id}"

    # --- orders in --------------------------------------------------------------------------------
    def parse_order_event(self, topic: str, body: bytes) -> OrderEvent:
        payload = webhooks.parse_object(body)
        if topic == "order.deleted":
            if not isinstance(payload.get("id"), int):
                raise ValueError("order.deleted body has no integer id")
            return OrderEvent(platform_order_id=str(payload["id"]), order=None, deleted=True)
        order = self.to_order(payload)
        return OrderEvent(platform_order_id=order.platform_order_id, order=order)

    def to_order(self, payload: Mapping[str, Any]) -> Order:
        """The neutral order, with virtual/downloadable lines marked from the store's catalogue."""
        if isinstance(payload.get("id"), float):
            raise ValueError("order id arrived as a float")
        if (
            refunds.has_refunds(payload)
            and payload.get("status") not in CANCEL_STATUSES
            and isinstance(payload.get("id"), int)
        ):
            # Refunded units are not shipped; which ones only the refunds themselves say.
            payload = refunds.net_of_refunds(payload, self.client().get(f"orders/{payload['id']}/refunds") or [])
        pairs = catalogue_ids(payload)
        non_shippable = self.catalogue.non_shippable(self.client(), pairs) if pairs else set()
        missing = [
            line_key(p, v)
            for (p, v), item in zip(pairs, payload.get("line_items") or [], strict=False)
            if not (item.get("sku") or "").strip()
        ]
        return parse_order(payload, non_shippable, self.catalogue.sku_for_ids(missing))

    def orders_modified_since(self, since: datetime) -> Iterator[Order]:
        """Orders saved after ``since`` (UTC), oldest change first, trashed ones included."""
        after = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        base = {"modified_after": after, "dates_are_gmt": "true", "orderby": "modified", "order": "asc"}
        for status in ("any", "trash"):  # "any" leaves out the trash
            for payload in self.client().pages("orders", {**base, "status": status}):
                yield self.to_order(payload)

    # --- tracking out -----------------------------------------------------------------------------
    def write_tracking(
        self, order_platform_id: str, shipment: Shipment, lines: Iterable[Mapping[str, Any]]
    ) -> TrackingWrite:
        return self._write(order_platform_id, shipment, list(lines), "")

    def update_tracking(self, order_platform_id: str, platform_fulfilment_id: str, shipment: Shipment) -> TrackingWrite:
        return self._write(order_platform_id, shipment, [], platform_fulfilment_id)

    def _write(self, order_id: str, shipment: Shipment, lines: list[Mapping[str, Any]], replaces: str) -> TrackingWrite:
        client = self.client()
        namespace = tracking.tracking_namespace(self._cached("namespaces", client.namespaces))
        providers: Mapping[str, Mapping[str, str]] = {}
        if namespace == tracking.SHIPMENT_TRACKING:
            providers = self._cached(
                "providers", lambda: client.get("shipment-trackings/providers", namespace=namespace) or {}
            )
        written, saved = tracking.write_tracking(
            client,
            order_id,
            shipment,
            lines,
            namespace=namespace,
            providers=providers,
            customer_note=bool(self.shop.settings.get("notify_customer", True)),
            complete=bool(self.shop.settings.get("complete_when_shipped", True)) and not replaces,
            replaces=replaces,
        )
        if saved:
            echoes.remember(self.context.redis, self.shop.id, "order", saved)
        return written

    def locations(self) -> list[ShopLocation]:
        """WooCommerce core has no locations: one stock figure per product, so one implicit
        location (no call made)."""
        return [ShopLocation(SINGLE_STORE_LOCATION, self.shop.domain)]

    # --- stock out --------------------------------------------------------------------------------
    def stock_items(self, location_id: str, skus: Sequence[str] | None = None) -> list[StockItem]:
        """Products and variations carrying a SKU (one stock figure each: ``location_id`` unused)."""
        return inventory.list_items(self.client(), self.catalogue, skus)

    def write_stock(self, location_id: str, changes: Sequence[StockChange], idempotency_key: str) -> StockWrite:
        """Absolute quantities in batches of at most 100. WooCommerce keeps one stock figure per
        product (``location_id`` unused) and has no idempotency keys: absolute writes need none."""
        limit_key = f"relais:woo:batch-limit:{self.shop.id}"
        stored = self.context.redis.get(limit_key) if self.context.redis is not None else None
        limit = int(stored) if stored else inventory.BATCH_LIMIT
        result, accepted = inventory.write_stock(
            self.client(),
            self.catalogue,
            changes,
            limit=limit,
            on_saved=lambda product: echoes.remember(self.context.redis, self.shop.id, "product", product),
        )
        if accepted != limit and self.context.redis is not None:
            self.context.redis.set(limit_key, accepted, ex=7 * 86400)
        return result

    def catalogue_change(self, topic: str, body: bytes) -> CatalogueChange:
        """A ``product.updated`` names one product or variation (its SKU now, its item id); it also
        refreshes our own caches of that product (SKU → id, whether it ships)."""
        product = webhooks.parse_object(body)
        if not isinstance(product.get("id"), int):
            raise ValueError(f"{topic} body has no integer id")
        self.catalogue.remember(product)
        item = inventory.item_id(product)
        if topic.endswith(".deleted") or product.get("status") == "trash":
            return CatalogueChange(deleted_item_ids=frozenset({item}))
        sku = str(product.get("sku") or "").strip()
        return CatalogueChange(skus=frozenset({sku} if sku else ()), item_ids=frozenset({item}))

    # --- connection -------------------------------------------------------------------------------
    def verify_access(self) -> str:
        """A live call with the stored keys: raises ``AuthError`` when the store refuses them."""
        client = self.client()
        client.get("orders", {"per_page": 1, "_fields": "id"})
        return f"keys accepted by {self.shop.domain}"

    def ensure_webhooks(self, rotate_secret: bool = False) -> WebhookReport:
        secret = self.shop.credentials.get("webhook_secret", "")
        if not secret:
            raise AuthError(f"no webhook secret stored for {self.shop.domain}")
        return connect.ensure_webhooks(self.client(), self.delivery_url(), secret, rotate_secret=rotate_secret)

    def _cached(self, name: str, load: Any) -> Any:
        redis = self.context.redis
        key = f"relais:woo:{name}:{self.shop.domain}"
        if redis is not None and (raw := redis.get(key)):
            return json.loads(raw)
        value = load()
        if redis is not None:
            redis.set(key, json.dumps(value), ex=CACHE_TTL)
        return value
