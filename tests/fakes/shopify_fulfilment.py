"""The fake Shopify's orders, fulfilment orders and fulfilments, and the resolvers over them.

Rules as Shopify documents them: one fulfilment order (FO) per location; ``fulfillmentCreate``
takes FOs of one order and one location only, only OPEN / IN_PROGRESS ones, and at most each FO
line item's ``remainingQuantity`` ("Invalid fulfillment order line item quantity requested.");
omitting the line items takes everything remaining. Refusals are ``userErrors``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

QUANTITY_ERROR = "Invalid fulfillment order line item quantity requested."
ACCEPTED = ("ACCEPTED", "CANCELLATION_REJECTED")  # a service may fulfil its FO only after accepting it


@dataclass
class FakeLineItem:
    id: str
    sku: str
    quantity: int

    @property
    def legacy_id(self) -> str:
        return self.id.rsplit("/", 1)[1]


@dataclass
class FakeFOLine:
    id: str
    line_item: FakeLineItem
    total: int
    remaining: int


@dataclass
class FakeFO:
    id: str
    order_id: str
    location_id: str
    status: str = "OPEN"
    lines: list[FakeFOLine] = field(default_factory=list)
    request_status: str = "UNSUBMITTED"  # fulfilment-service locations: the request handshake
    order_name: str = ""


@dataclass
class FakeFulfilment:
    id: str
    order_id: str
    location_id: str
    tracking: list[dict[str, Any]]
    notify_customer: bool
    lines: dict[str, int]  # FO line item id → quantity
    status: str = "SUCCESS"
    tracking_updates: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeOrder:
    id: str
    name: str
    line_items: list[FakeLineItem]
    fulfillment_orders: list[FakeFO]
    fulfillments: list[FakeFulfilment] = field(default_factory=list)

    @property
    def legacy_id(self) -> str:
        return self.id.rsplit("/", 1)[1]

    def line(self, sku: str) -> FakeLineItem:
        return next(li for li in self.line_items if li.sku == sku)


def _page(items: list[Any], first: int | None = None, after: str | None = None, **_: Any) -> dict[str, Any]:
    start = int(after) if after else 0
    end = start + (first or 50)
    return {
        "nodes": items[start:end],
        "pageInfo": {
            "hasNextPage": end < len(items),
            "endCursor": str(min(end, len(items))),
            "hasPreviousPage": start > 0,
        },
    }


def _user_error(message: str, *path: str) -> dict[str, Any]:
    return {"fulfillment": None, "userErrors": [{"field": list(path) or None, "message": message}]}


class FakeState:
    """All orders of the fake shop. Not thread-safe by itself: the server holds its lock."""

    def __init__(self) -> None:
        self.orders: dict[str, FakeOrder] = {}
        self.fos: dict[str, FakeFO] = {}
        self.fulfilments: dict[str, FakeFulfilment] = {}
        self._numbers = itertools.count(5_000_000_001)
        self.service_locations: set[str] = set()  # locations of fulfilment services (shopify_fulfilment_orders)

    def _gid(self, kind: str) -> str:
        return f"gid://shopify/{kind}/{next(self._numbers)}"

    def add_order(self, order_id: int, lines: list[tuple[str, int, str]], name: str) -> FakeOrder:
        order_gid = f"gid://shopify/Order/{order_id}"
        items: list[FakeLineItem] = []
        by_location: dict[str, FakeFO] = {}
        for sku, quantity, location in lines:
            item = FakeLineItem(self._gid("LineItem"), sku, quantity)
            items.append(item)
            fo = by_location.get(location)
            if fo is None:
                fo = by_location[location] = FakeFO(self._gid("FulfillmentOrder"), order_gid, location, order_name=name)
                self.fos[fo.id] = fo
            fo.lines.append(FakeFOLine(self._gid("FulfillmentOrderLineItem"), item, quantity, quantity))
        order = FakeOrder(order_gid, name, items, list(by_location.values()))
        self.orders[order_gid] = order
        return order

    def cancel_fulfilment(self, fulfilment_id: str) -> None:
        cancelled = self.fulfilments[fulfilment_id]
        cancelled.status = "CANCELLED"
        for fo in self.fos.values():
            for line in fo.lines:
                if line.id in cancelled.lines:
                    line.remaining += cancelled.lines[line.id]
                    fo.status = "OPEN" if line.remaining == line.total else "IN_PROGRESS"

    # --- views: dicts for graphql-core's default resolver (callables receive the arguments) ---
    def root(self) -> dict[str, Any]:
        return {
            "order": lambda _info, id: self._order_view(self.orders.get(id)),
            "fulfillmentOrder": lambda _info, id: self._fo_view(self.fos.get(id)),
            "fulfillmentCreate": lambda _info, fulfillment, message=None: self.fulfillment_create(fulfillment),
            "fulfillmentTrackingInfoUpdate": lambda _info, **args: self.tracking_update(**args),
        }

    def _order_view(self, order: FakeOrder | None) -> dict[str, Any] | None:
        if order is None:
            return None
        return {
            "id": order.id,
            "name": order.name,
            "fulfillments": lambda _i, first=None, **_: [self._fulfilment_view(f) for f in order.fulfillments][:first],
            "fulfillmentOrders": lambda _i, **a: _page([self._fo_view(fo) for fo in order.fulfillment_orders], **a),
        }

    def _fo_view(self, fo: FakeFO | None) -> dict[str, Any] | None:
        if fo is None:
            return None
        lines = [
            {
                "id": li.id,
                "totalQuantity": li.total,
                "remainingQuantity": li.remaining,
                "sku": li.line_item.sku,
                "lineItem": {"id": li.line_item.id, "sku": li.line_item.sku},
            }
            for li in fo.lines
        ]
        return {
            "id": fo.id,
            "orderId": fo.order_id,
            "orderName": fo.order_name,
            "status": fo.status,
            "requestStatus": fo.request_status,
            "assignedLocation": {"location": {"id": fo.location_id}, "name": "Warehouse", "countryCode": "FR"},
            "lineItems": lambda _i, **a: _page(lines, **a),
        }

    def _fulfilment_view(self, f: FakeFulfilment) -> dict[str, Any]:
        return {"id": f.id, "status": f.status, "trackingInfo": lambda _i, first=None: f.tracking[:first]}

    # --- mutations --------------------------------------------------------------------------
    def fulfillment_create(self, fulfillment: dict[str, Any]) -> dict[str, Any]:
        groups = fulfillment["lineItemsByFulfillmentOrder"]
        if not groups:
            return _user_error("Line items by fulfillment order can't be blank.", "fulfillment")
        fos = [self.fos.get(g["fulfillmentOrderId"]) for g in groups]
        if any(fo is None for fo in fos):
            return _user_error("Fulfillment order does not exist.", "fulfillment", "lineItemsByFulfillmentOrder")
        chosen = [fo for fo in fos if fo is not None]
        if len({fo.order_id for fo in chosen}) > 1 or len({fo.location_id for fo in chosen}) > 1:
            return _user_error("All fulfillment orders must belong to the same order and location.", "fulfillment")
        plan: dict[str, int] = {}
        lines_by_id = {li.id: li for fo in chosen for li in fo.lines}
        for fo, group in zip(chosen, groups, strict=True):
            if fo.status not in ("OPEN", "IN_PROGRESS"):
                return _user_error(f"Fulfillment order {fo.id} has an unfulfillable status= {fo.status.lower()}.")
            if fo.location_id in self.service_locations and fo.request_status not in ACCEPTED:
                return _user_error(f"Fulfillment order {fo.id} has no accepted fulfillment request.")
            wanted = group.get("fulfillmentOrderLineItems")
            if wanted is None:
                plan.update({li.id: li.remaining for li in fo.lines if li.remaining})
                continue
            for item in wanted:
                line = lines_by_id.get(item["id"])
                if line is None or line not in fo.lines or not 0 < item["quantity"] <= line.remaining:
                    return _user_error(QUANTITY_ERROR, "fulfillment")
                plan[line.id] = plan.get(line.id, 0) + item["quantity"]
        if not plan or any(q > lines_by_id[i].remaining for i, q in plan.items()):
            return _user_error(QUANTITY_ERROR, "fulfillment")
        for line_id, quantity in plan.items():
            lines_by_id[line_id].remaining -= quantity
        for fo in chosen:
            fo.status = "CLOSED" if not any(li.remaining for li in fo.lines) else "IN_PROGRESS"
        created = FakeFulfilment(
            id=self._gid("Fulfillment"),
            order_id=chosen[0].order_id,
            location_id=chosen[0].location_id,
            tracking=_tracking(fulfillment.get("trackingInfo")),
            notify_customer=bool(fulfillment.get("notifyCustomer", False)),
            lines=plan,
        )
        self.fulfilments[created.id] = created
        self.orders[created.order_id].fulfillments.append(created)
        return {"fulfillment": self._fulfilment_view(created), "userErrors": []}

    def tracking_update(
        self, fulfillmentId: str, trackingInfoInput: dict[str, Any], notifyCustomer: bool | None = None
    ) -> dict[str, Any]:
        found = self.fulfilments.get(fulfillmentId)
        if found is None:
            return _user_error("Fulfillment does not exist.", "fulfillmentId")
        found.tracking = _tracking(trackingInfoInput)
        found.tracking_updates.append({"tracking": found.tracking, "notifyCustomer": bool(notifyCustomer)})
        return {"fulfillment": self._fulfilment_view(found), "userErrors": []}


def _tracking(info: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not info:
        return []
    numbers = info.get("numbers") or ([info["number"]] if info.get("number") else [])
    urls = info.get("urls") or ([info["url"]] if info.get("url") else [])
    return [
        {"number": n, "company": info.get("company"), "url": urls[i] if i < len(urls) else None}
        for i, n in enumerate(numbers)
    ]
