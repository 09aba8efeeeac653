"""The data behind the fake WooCommerce store: orders, products, notes, trackings, webhooks, keys.

Shapes follow the REST v3 samples (``vendor/samples/woocommerce``). Every change moves a logical
clock forward by at least one second (``date_modified_gmt`` has second resolution on a real
store) and queues the webhook deliveries WooCommerce would: coalesced per webhook and resource
while pending, with the payload built when it is *sent*, not when the change happened
(reference §1.5, woocommerce#15699).
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parents[2] / "vendor" / "samples" / "woocommerce"
DRAFT_STATUSES = frozenset({"checkout-draft", "draft", "auto-draft", "new"})
JSON = dict[str, Any]


def sample(name: str) -> JSON:
    return json.loads((SAMPLES / name).read_text())


@dataclass
class Key:
    key_id: int
    consumer_key: str
    consumer_secret: str
    permissions: str = "read_write"
    user_id: int = 1
    nonces: set[str] = field(default_factory=set)


@dataclass
class Webhook:
    id: int
    name: str
    topic: str
    delivery_url: str
    secret: str
    user_id: int
    status: str = "active"
    failure_count: int = 0
    created: str = ""
    modified: str = ""

    def as_json(self, store_url: str) -> JSON:
        resource, _, event = self.topic.partition(".")
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "topic": self.topic,
            "resource": resource,
            "event": event,
            "hooks": [],
            "delivery_url": self.delivery_url,
            "date_created": self.created,
            "date_created_gmt": self.created,
            "date_modified": self.modified,
            "date_modified_gmt": self.modified,
            "_links": {"self": [{"href": f"{store_url}/wp-json/wc/v3/webhooks/{self.id}"}]},
        }


def make_key(key_id: int, permissions: str = "read_write") -> Key:
    return Key(key_id, "ck_" + secrets.token_hex(20), "cs_" + secrets.token_hex(20), permissions)


class WooState:
    """Everything the store holds; the HTTP layer (``woocommerce.py``) locks around every use."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.clock = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
        self.orders: dict[int, JSON] = {}
        self.notes: dict[int, list[JSON]] = {}
        self.trackings: dict[int, list[JSON]] = {}
        self.refunds: dict[int, list[JSON]] = {}
        self.products: dict[int, JSON] = {}
        self.webhooks: dict[int, Webhook] = {}
        self.keys: list[Key] = [make_key(1)]
        self.pending: list[tuple[int, str, int]] = []  # (webhook id, topic, resource id)
        self._ids = iter(range(1000, 10**9))

    # --- time and ids -------------------------------------------------------------------------
    def tick(self) -> str:
        now = datetime.now(UTC).replace(microsecond=0)
        self.clock = max(now, self.clock + timedelta(seconds=1))
        return self.clock.strftime("%Y-%m-%dT%H:%M:%S")

    def next_id(self) -> int:
        return next(self._ids)

    @property
    def key(self) -> Key:
        return self.keys[0]

    # --- catalogue ----------------------------------------------------------------------------
    def add_product(
        self,
        sku: str,
        *,
        stock: int | None = 0,
        manage_stock: bool = True,
        virtual: bool = False,
        downloadable: bool = False,
        parent_id: int = 0,
    ) -> int:
        product = sample("product_retrieve_v3.json")
        pid = self.next_id()
        now = self.tick()
        product.update(
            id=pid,
            name=f"Product {sku}",
            sku=sku,
            type="variation" if parent_id else "simple",
            parent_id=parent_id,
            manage_stock=manage_stock,
            stock_quantity=stock if manage_stock else None,
            virtual=virtual,
            downloadable=downloadable,
            date_created_gmt=now,
            date_modified_gmt=now,
            date_created=now,
            date_modified=now,
        )
        self._stock_status(product)
        self.products[pid] = product
        if parent_id:
            parent = self.products[parent_id]
            parent["type"] = "variable"
            parent["variations"] = [*parent.get("variations", []), pid]
        return pid

    def by_sku(self, sku: str) -> JSON | None:
        return next((p for p in self.products.values() if p["sku"] == sku), None)

    def set_stock(self, product: JSON, item: JSON) -> None:
        if "manage_stock" in item:
            product["manage_stock"] = bool(item["manage_stock"])
        if product["manage_stock"] is True:
            if "stock_quantity" in item:
                product["stock_quantity"] = int(item["stock_quantity"])
        else:
            product["stock_quantity"] = None  # WooCommerce clears it when stock is not managed
        self._stock_status(product)
        product["date_modified_gmt"] = product["date_modified"] = self.tick()
        self.fire("product.updated", product["id"])

    @staticmethod
    def _stock_status(product: JSON) -> None:
        if product["manage_stock"] is True:
            product["stock_status"] = "instock" if (product["stock_quantity"] or 0) > 0 else "outofstock"

    # --- orders -------------------------------------------------------------------------------
    def create_order(
        self,
        lines: list[tuple[str, int]],
        *,
        status: str = "processing",
        shipping_method: str = "flat_rate",
        first_name: str = "Camille",
        city: str = "Paris",
        address_1: str = "12 rue de l'Échelle / Bât. B",
        country: str = "FR",
        postcode: str = "75001",
    ) -> int:
        order = sample("order_retrieve_v3.json")
        oid = self.next_id()
        now = self.tick()
        items = []
        for n, (sku, qty) in enumerate(lines):
            product = self.by_sku(sku)
            pid = product["id"] if product else 0
            parent = product.get("parent_id", 0) if product else 0
            items.append(
                {
                    **copy.deepcopy(order["line_items"][0]),
                    "id": oid * 10 + n,
                    "name": f"Article {sku} – édition",
                    "product_id": parent or pid,
                    "variation_id": pid if parent else 0,
                    "quantity": qty,
                    "sku": sku,
                }
            )
        shipping = {
            **order["shipping"],
            "first_name": first_name,
            "last_name": "Martin",
            "address_1": address_1,
            "city": city,
            "postcode": postcode,
            "country": country,
            "state": "",
            "phone": "",
        }
        order.update(
            id=oid,
            number=str(oid),
            status=status,
            created_via="checkout",
            date_created=now,
            date_created_gmt=now,
            date_modified=now,
            date_modified_gmt=now,
            line_items=items,
            shipping=shipping,
            billing={**order["billing"], "email": "camille@example.com", "phone": "+33 1 23 45 67 89"},
            shipping_lines=[{**order["shipping_lines"][0], "method_id": shipping_method}],
            meta_data=[],
        )
        order["_links"] = {
            "self": [{"href": f"{self.store_url}/wp-json/wc/v3/orders/{oid}"}],
            "collection": [{"href": f"{self.store_url}/wp-json/wc/v3/orders"}],
        }
        self.orders[oid] = order
        self.notes[oid] = []
        # Drafts are kept out of order.created (WC_Webhook::should_deliver) but not out of updates.
        if status not in DRAFT_STATUSES:
            self.fire("order.created", oid)
        return oid

    def update_order(self, oid: int, changes: JSON) -> JSON:
        order = self.orders[oid]
        if "status" in changes:
            order["status"] = changes["status"]
            if order["status"] == "completed":
                order["date_completed_gmt"] = order["date_completed"] = self.clock.strftime("%Y-%m-%dT%H:%M:%S")
        for meta in changes.get("meta_data") or []:
            existing = next(
                (m for m in order["meta_data"] if m["key"] == meta.get("key") or m["id"] == meta.get("id")), None
            )
            if existing:
                existing["value"] = meta["value"]
            else:
                order["meta_data"].append({"id": self.next_id(), "key": meta["key"], "value": meta["value"]})
        order["date_modified_gmt"] = order["date_modified"] = self.tick()
        self.fire("order.updated", oid)
        return order

    def refund(self, oid: int, units: dict[str, int], reason: str = "") -> JSON:
        """A partial refund of ``units`` (SKU → how many) as WooCommerce records it: a refund object
        with negative line quantities (``GET …/orders/<id>/refunds``), its summary in the order's
        ``refunds``, the order saved (``woocommerce_order_refunded`` → order.updated)."""
        order = self.orders[oid]
        items = []
        for sku, qty in units.items():
            line = next(li for li in order["line_items"] if li["sku"] == sku)
            items.append(
                {
                    "id": self.next_id(),
                    "name": line["name"],
                    "product_id": line["product_id"],
                    "variation_id": line["variation_id"],
                    "quantity": -qty,
                    "sku": sku,
                    "total": f"-{qty * 10}.00",
                    "refund_total": qty * 10,
                    "meta_data": [],
                }
            )
        refund = {
            "id": self.next_id(),
            "date_created_gmt": self.tick(),
            "amount": f"{sum(-int(i['quantity']) * 10 for i in items)}.00",
            "reason": reason,
            "refunded_by": 1,
            "refunded_payment": False,
            "meta_data": [],
            "line_items": items,
            "shipping_lines": [],
            "tax_lines": [],
            "fee_lines": [],
        }
        self.refunds.setdefault(oid, []).insert(0, refund)  # newest first, as the REST list is
        order.setdefault("refunds", []).insert(
            0, {"id": refund["id"], "reason": reason, "total": f"-{refund['amount']}"}
        )
        order["date_modified_gmt"] = order["date_modified"] = self.tick()
        self.fire("order.updated", oid)
        return refund

    def trash_order(self, oid: int) -> None:
        self.orders[oid]["status"] = "trash"
        self.orders[oid]["date_modified_gmt"] = self.tick()
        self.fire("order.deleted", oid)

    def add_note(self, oid: int, note: str, customer_note: bool) -> JSON:
        entry = {
            "id": self.next_id(),
            "author": "system",
            "date_created_gmt": self.tick(),
            "note": note,
            "customer_note": customer_note,
        }
        self.notes[oid].append(entry)
        return entry

    def add_tracking(self, oid: int, item: JSON) -> JSON:
        entry = {
            "tracking_id": hashlib.md5(f"{oid}{item['tracking_number']}{self.next_id()}".encode()).hexdigest(),  # noqa: S324  # nosec B324 # an id
            "tracking_provider": item.get("tracking_provider") or "",
            "tracking_link": item.get("custom_tracking_link") or "",
            "tracking_number": item["tracking_number"],
            "date_shipped": item.get("date_shipped") or self.clock.strftime("%Y-%m-%d"),
        }
        if item.get("custom_tracking_provider"):
            entry["custom_tracking_provider"] = item["custom_tracking_provider"]
        self.trackings.setdefault(oid, []).append(entry)
        # The extension saves the order (meta _wc_shipment_tracking_items): an order.updated follows.
        self.orders[oid]["date_modified_gmt"] = self.orders[oid]["date_modified"] = self.tick()
        self.fire("order.updated", oid)
        return entry

    # --- webhooks -----------------------------------------------------------------------------
    def fire(self, topic: str, resource_id: int) -> None:
        for hook in self.webhooks.values():
            if hook.topic != topic or hook.status != "active":
                continue
            entry = (hook.id, topic, resource_id)
            if entry not in self.pending:  # coalesced while one is pending (Action Scheduler)
                self.pending.append(entry)

    def payload(self, topic: str, resource_id: int) -> JSON:
        if topic.endswith(".deleted"):
            return {"id": resource_id}
        source = self.orders if topic.startswith("order.") else self.products
        resource = source.get(resource_id)
        if resource is None:
            return {"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID.", "data": {"status": 404}}
        return copy.deepcopy(resource)

    def create_webhook(self, body: JSON, user_id: int) -> Webhook:
        now = self.tick()
        hook = Webhook(
            id=self.next_id(),
            name=body.get("name") or f"Webhook created on {now}",
            topic=body["topic"],
            delivery_url=body["delivery_url"],
            # An empty secret becomes wp_generate_password(50, true, true).
            secret=body.get("secret") or secrets.token_urlsafe(38)[:50],
            user_id=user_id,
            created=now,
            modified=now,
        )
        self.webhooks[hook.id] = hook
        return hook
