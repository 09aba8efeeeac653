"""The fake ShipBob's account data: orders, their shipments, products and stock per centre.

Shapes follow ShipBob's models (``Orders.OrderViewModel``, ``Orders.ShipmentViewModel`` with
``tracking`` and ``products[].inventory_items[]``, ``Products.ProductViewModelV5`` with variants
carrying ``inventory.inventory_id``, ``Inventory.InventoryQuantityFcResponse``). Every method
takes the lock and returns copies, so the threaded server can serialise answers outside it.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]
LOCATIONS = {1: "Cicero (IL)", 2: "Moreno Valley (CA)", 3: "Bethlehem (PA)"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class ShipBobState:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(100_000_001)
        self.orders: dict[int, Json] = {}
        self.by_reference: dict[str, int] = {}
        self.shipments: dict[int, Json] = {}
        self.products: dict[str, Json] = {}  # by SKU
        self.stock: dict[int, dict[int, tuple[int, int]]] = {}  # inventory id → location → (on hand, fulfillable)
        self.max_page_size = 250  # tests lower it to force link paging

    # -- products and stock ----------------------------------------------------------------

    def add_product(
        self, sku: str, name: str = "", *, levels: dict[int, tuple[int, int]] | None = None, digital: bool = False
    ) -> int:
        """A product with one variant; returns its inventory id. ``levels``: location → (on hand, fulfillable)."""
        with self._lock:
            product = self._product(sku, name or sku)
            product["variants"][0]["is_digital"] = digital
            inventory_id = product["variants"][0]["inventory"]["inventory_id"]
            self.stock[inventory_id] = dict(levels or {})
            return inventory_id

    def _product(self, sku: str, name: str) -> Json:
        if sku not in self.products:
            inventory_id = next(self._ids)
            variant = {
                "id": next(self._ids),
                "sku": sku,
                "name": name,
                "status": "Active",
                "is_digital": False,
                "inventory": {"inventory_id": inventory_id, "on_hand_qty": 0},
            }
            self.products[sku] = {"id": next(self._ids), "name": name, "type": "Regular", "variants": [variant]}
            self.stock[inventory_id] = {}
        return self.products[sku]

    def product_views(self) -> list[Json]:
        with self._lock:
            views = copy.deepcopy(list(self.products.values()))
        for product in views:
            for variant in product["variants"]:
                levels = self.stock.get(variant["inventory"]["inventory_id"], {})
                variant["inventory"]["on_hand_qty"] = sum(on_hand for on_hand, _ in levels.values())
        return views

    def location_views(self) -> list[Json]:
        """Every fulfilment centre this account holds stock at (and the named ones), active."""
        with self._lock:
            ids = set(LOCATIONS) | {loc for per in self.stock.values() for loc in per}
        return [
            {
                "id": loc,
                "name": LOCATIONS.get(loc, f"FC {loc}"),
                "abbreviation": f"FC{loc}",
                "is_active": True,
                "access_granted": True,
                "is_receiving_enabled": True,
                "is_shipping_enabled": True,
                "timezone": "Central Standard Time",
            }
            for loc in sorted(ids)
        ]

    def level_views(self, wanted: set[int] | None) -> list[Json]:
        with self._lock:
            by_inventory = {p["variants"][0]["inventory"]["inventory_id"]: p for p in self.products.values()}
            views = []
            for inventory_id in sorted(self.stock):
                if wanted is not None and inventory_id not in wanted:
                    continue
                product = by_inventory[inventory_id]
                locations = [
                    {
                        "location_id": loc,
                        "name": LOCATIONS.get(loc, f"FC {loc}"),
                        "on_hand_quantity": on_hand,
                        "fulfillable_quantity": fulfillable,
                        "committed_quantity": on_hand - fulfillable,
                        "awaiting_quantity": 0,
                        "internal_transfer_quantity": 0,
                    }
                    for loc, (on_hand, fulfillable) in sorted(self.stock[inventory_id].items())
                ]
                views.append(
                    {
                        "inventory_id": inventory_id,
                        "name": product["name"],
                        "sku": product["variants"][0]["sku"],
                        "locations": locations,
                    }
                )
            return views

    # -- orders ----------------------------------------------------------------------------

    def validate_order(self, body: Json) -> dict[str, list[str]]:
        """Field → messages for what ShipBob requires of a create (empty when valid)."""
        errors: dict[str, list[str]] = {}

        def need(value: object, key: str) -> None:
            if value in (None, "", [], {}):
                errors.setdefault(key, []).append(f"The {key} field is required.")

        need(body.get("reference_id"), "reference_id")
        need(body.get("shipping_method"), "shipping_method")
        if body.get("type") not in ("DTC", "DropShip", "B2B"):
            errors["type"] = ["The type field must be one of DTC, DropShip, B2B."]
        recipient = body.get("recipient") or {}
        need(recipient.get("name"), "recipient.name")
        for key in ("address1", "city", "country"):
            need((recipient.get("address") or {}).get(key), f"recipient.address.{key}")
        products = body.get("products")
        if not isinstance(products, list) or not products:
            errors["products"] = ["At least one product is required."]
            return errors
        for n, line in enumerate(products):
            need(line.get("reference_id"), f"products[{n}].reference_id")
            if not isinstance(line.get("quantity"), int) or line["quantity"] < 1:
                errors.setdefault(f"products[{n}].quantity", []).append("Quantity must be at least 1.")
            if line.get("reference_id") not in self.products:
                need(line.get("name"), f"products[{n}].name")
        return errors

    def create_order(self, body: Json, channel_id: int) -> Json | None:
        """The new order as ShipBob answers it (201), or None when the reference is taken."""
        with self._lock:
            if body["reference_id"] in self.by_reference:
                return None
            order_id = next(self._ids)
            lines = []
            for line in body["products"]:
                product = self._product(line["reference_id"], line.get("name") or line["reference_id"])
                lines.append(
                    {
                        "id": product["id"],
                        "reference_id": line["reference_id"],
                        "sku": line["reference_id"],
                        "name": product["name"],
                        "quantity": line["quantity"],
                        "external_line_id": line.get("external_line_id"),
                        "inventory_id": product["variants"][0]["inventory"]["inventory_id"],
                    }
                )
            order = {
                "id": order_id,
                "reference_id": body["reference_id"],
                "order_number": body.get("order_number"),
                "created_date": _now(),
                "purchase_date": body.get("purchase_date"),
                "status": "Processing",
                "type": body["type"],
                "channel": {"id": channel_id, "name": "Relais"},
                "shipping_method": body["shipping_method"],
                "recipient": body["recipient"],
                "products": lines,
                "tags": body.get("tags") or [],
                "shipments": [],
            }
            order["shipments"].append(self._new_shipment(order, [(line, line["quantity"]) for line in lines]))
            self.orders[order_id] = order
            self.by_reference[body["reference_id"]] = order_id
            return copy.deepcopy(order)

    def _new_shipment(self, order: Json, units: list[tuple[Json, int]]) -> Json:
        shipment = {
            "id": next(self._ids),
            "order_id": order["id"],
            "reference_id": order["reference_id"],
            "status": "Processing",
            "created_date": _now(),
            "last_update_at": _now(),
            "last_tracking_update_at": None,
            "delivery_date": None,
            "actual_fulfillment_date": None,
            "is_tracking_uploaded": False,
            "location": {"id": 1, "name": LOCATIONS[1]},
            "ship_option": order["shipping_method"],
            "tracking": None,
            "status_details": [],
            "products": [
                {
                    "id": line["id"],
                    "reference_id": line["reference_id"],
                    "sku": line["sku"],
                    "name": line["name"],
                    "inventory_items": [{"id": line["inventory_id"], "name": line["name"], "quantity": qty}],
                }
                for line, qty in units
            ],
        }
        self.shipments[shipment["id"]] = shipment
        return shipment

    def order(self, order_id: int) -> Json | None:
        with self._lock:
            order = self.orders.get(order_id)
            return copy.deepcopy(order) if order else None

    def shipment_view(self, shipment_id: int) -> Json:
        with self._lock:
            return copy.deepcopy(self.shipments[shipment_id])

    def find_orders(
        self, *, reference_ids: list[str], ids: list[int], has_tracking: str | None, tracking_uploaded: str | None
    ) -> list[Json]:
        def tracked(order: Json) -> list[Json]:
            return [s for s in order["shipments"] if s["tracking"]]

        with self._lock:
            found = []
            for order in sorted(self.orders.values(), key=lambda o: o["id"]):
                if reference_ids and order["reference_id"] not in reference_ids:
                    continue
                if ids and order["id"] not in ids:
                    continue
                if has_tracking is not None and bool(tracked(order)) != (has_tracking.lower() == "true"):
                    continue
                if tracking_uploaded is not None:
                    uploaded = all(s["is_tracking_uploaded"] for s in tracked(order))
                    if uploaded != (tracking_uploaded.lower() == "true"):
                        continue
                found.append(copy.deepcopy(order))
            return found

    # -- fulfilment ------------------------------------------------------------------------

    def ship(
        self,
        order_id: int,
        *,
        parcels: int = 1,
        shipped: int | None = None,
        carrier: str = "USPS",
        service: str = "Ground Advantage",
    ) -> list[Json]:
        """Split the order's units over ``parcels`` shipments; the first ``shipped`` (default all)
        get a label: tracking, status Completed, not yet uploaded."""
        with self._lock:
            order = self.orders[order_id]
            units = [line for line in order["products"] for _ in range(line["quantity"])]
            parcels = max(1, min(parcels, len(units)))
            groups: list[list[Json]] = [units[n::parcels] for n in range(parcels)]
            old = order["shipments"][0]
            del self.shipments[old["id"]]
            order["shipments"] = []
            for n, group in enumerate(groups):
                counts = {line["reference_id"]: (line, group.count(line)) for line in group}
                shipment = self._new_shipment(order, list(counts.values()))
                if n == 0:  # ShipBob keeps the order's first shipment id
                    del self.shipments[shipment["id"]]
                    shipment["id"] = old["id"]
                    self.shipments[old["id"]] = shipment
                if n < (parcels if shipped is None else shipped):
                    number = "9400" + "".join(secrets.choice("0123456789") for _ in range(18))
                    shipment.update(
                        status="Completed",
                        actual_fulfillment_date=_now(),
                        last_tracking_update_at=_now(),
                        tracking={
                            "carrier": carrier,
                            "carrier_service": service,
                            "tracking_number": number,
                            "tracking_url": f"https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
                        },
                    )
                order["shipments"].append(shipment)
            done = all(s["tracking"] for s in order["shipments"])
            order["status"] = "Fulfilled" if done else "PartiallyFulfilled"
            return copy.deepcopy(order["shipments"])

    def deliver(self, shipment_id: int) -> None:
        with self._lock:
            self.shipments[shipment_id].update(delivery_date=_now(), last_update_at=_now())

    def cancel(self, order_id: int) -> Json | None:
        """Cancel what has not shipped; a shipped parcel's result says why it could not be."""
        with self._lock:
            order = self.orders.get(order_id)
            if order is None:
                return None
            results = []
            for shipment in order["shipments"]:
                if shipment["status"] == "Cancelled":
                    ok, reason = True, "Shipment was already cancelled"
                elif shipment["tracking"]:
                    ok, reason = False, "Shipment has already shipped and cannot be cancelled"
                else:
                    shipment.update(status="Cancelled", last_update_at=_now())
                    ok, reason = True, "Shipment cancelled"
                results.append({"action": "Cancel", "is_success": ok, "reason": reason, "shipment_id": shipment["id"]})
            done = [r["is_success"] for r in results]
            status = "Success" if all(done) else "Failure" if not any(done) else "PartialSuccess"
            if all(done):
                order["status"] = "Cancelled"
            return {
                "order_id": order_id,
                "order": copy.deepcopy(order),
                "status": status,
                "canceled_shipment_results": results,
            }

    def update_address(self, shipment_id: int, body: Json) -> Json | None:
        """Change the recipient of the shipment's order while it has no label and is not cancelled."""
        with self._lock:
            shipment = self.shipments.get(shipment_id)
            if shipment is None:
                return None
            if shipment["status"] == "Cancelled" or shipment["tracking"]:
                error = {"code": "CONFLICT", "message": f"Shipment is {shipment['status']} and can no longer be edited"}
                return {"id": shipment_id, "is_success": False, "error": error}
            order = self.orders[shipment["order_id"]]
            address = {
                "address1": body["street_address1"],
                "address2": body.get("street_address2"),
                "city": body["city"],
                "state": body.get("state"),
                "zip_code": body.get("zip_code"),
                "country": body.get("country_code"),
                "company_name": body.get("company_name"),
            }
            order["recipient"] = {
                **order["recipient"],
                "name": body.get("recipient_name") or order["recipient"].get("name"),
                "address": {k: v for k, v in address.items() if v},
            }
            shipment["last_update_at"] = _now()
            return {"id": shipment_id, "is_success": True, "error": None}

    def live_orders(self, reference_prefix: str = "") -> list[Json]:
        """Orders not cancelled (whose reference starts with ``reference_prefix``)."""
        with self._lock:
            return [
                copy.deepcopy(o)
                for o in self.orders.values()
                if o["status"] != "Cancelled" and o["reference_id"].startswith(reference_prefix)
            ]

    def mark_uploaded(self, shipment_ids: list[Any], flag: bool) -> Json:
        """``batchUpdateTrackingUpload``'s reply: camelCase, one result per id, and a summary."""
        with self._lock:
            results = []
            for shipment_id in shipment_ids:
                shipment = self.shipments.get(shipment_id) if isinstance(shipment_id, int) else None
                if shipment is None:
                    error = {"code": "NOT_FOUND", "message": f"Shipment {shipment_id} was not found"}
                    results.append({"isSuccess": False, "shipmentId": shipment_id, "error": error})
                    continue
                shipment["is_tracking_uploaded"] = flag
                results.append({"isSuccess": True, "shipmentId": shipment_id, "error": None})
            ok = sum(1 for r in results if r["isSuccess"])
            return {
                "results": results,
                "summary": {"failed": len(results) - ok, "successful": ok, "total": len(results)},
            }
