"""The sandbox shop: a stand-in for a Shopify store's GraphQL Admin API, for development only.

It lets ``./dev serve`` + ``flask demo`` show the whole loop on a machine with no Shopify store:
orders come from the demo's signed webhooks, and this stand-in receives the fulfilments Relais
writes back. It answers the documents of ``integrations.shopify.fulfilment`` and
``integrations.shopify.inventory`` (by operation name) the way Shopify does: one fulfilment order
per order at ``SANDBOX_LOCATION`` built from Relais' own copy of the order, ``remainingQuantity``
decreasing as fulfilments are created, the "Invalid fulfillment order line item quantity
requested." refusal; the store's one location and each order's risk (LOW, or HIGH when tagged
``sandbox-high-risk``); inventory items for every SKU the shop's orders carry, ``available`` set by
compare-and-set (``CHANGE_FROM_QUANTITY_STALE``); and the cost extension. State lives in Redis.
A shop uses it only when its credentials say ``sandbox_shop`` (``shop add ... --sandbox-shop``,
and the demo shop); real shops always go to SHOPIFY_ADMIN_URL.

Like Shopify, it answers only a valid ``*.myshopify.com`` name and the access token stored for
that shop (``X-Shopify-Access-Token``, or a bearer token): a shop's order lines and SKUs are not
readable with any other token, nor another shop's. The name is checked before it goes into a
Redis key, so it can never act as a pattern.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from integrations.shopify.auth import valid_shop
from sandbox import shop_fulfilment_service as service
from store.models import Order, OrderLine, Shop
from web import runtime

blueprint = Blueprint("sandbox_shop", __name__)

SANDBOX_LOCATION = "gid://shopify/Location/1"
SANDBOX_LOCATION_NAME = "Sandbox shop"
#: An order tagged so is assessed HIGH by the stand-in (the demo's way to show the fraud hold).
HIGH_RISK_TAG = "sandbox-high-risk"
QUANTITY_ERROR = "Invalid fulfillment order line item quantity requested."
_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")
_COST = {
    "requestedQueryCost": 10,
    "actualQueryCost": 10,
    "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 990.0, "restoreRate": 100.0},
}


def _key(shop: str, order_id: str) -> str:
    return f"relais:sandbox-shop:{shop}:{order_id}"


def _fulfilments(shop: str, order_id: str) -> list[dict[str, Any]]:
    return [json.loads(v) for v in runtime().redis.lrange(_key(shop, order_id), 0, -1)]


def _order_view(shop: str, order_gid: str) -> dict[str, Any] | None:
    order_id = order_gid.rsplit("/", 1)[-1]
    with runtime().sessions() as session:
        row = session.execute(
            select(Order).join(Shop).where(Shop.domain == shop, Order.platform_order_id == order_id)
        ).scalar_one_or_none()
        if row is None:
            return None
        lines = [
            (line.id, line.platform_line_id, line.sku, line.quantity) for line in row.lines if line.requires_shipping
        ]
        name = row.name
    fulfilments = _fulfilments(shop, order_id)
    done: dict[str, int] = {}
    for f in fulfilments:
        for line_id, quantity in f["lines"].items():
            done[line_id] = done.get(line_id, 0) + quantity
    nodes = [
        {
            "id": f"gid://shopify/FulfillmentOrderLineItem/{line_pk}",
            "totalQuantity": quantity,
            "remainingQuantity": quantity - done.get(f"gid://shopify/FulfillmentOrderLineItem/{line_pk}", 0),
            "lineItem": {"id": f"gid://shopify/LineItem/{line_id}", "sku": sku},
        }
        for line_pk, line_id, sku, quantity in lines
    ]
    open_ = any(n["remainingQuantity"] > 0 for n in nodes)
    page = {"hasNextPage": False, "endCursor": None}
    redis = runtime().redis
    status = "CANCELLED" if service.cancelled(redis, shop, order_id) else "OPEN" if open_ else "CLOSED"
    return {
        "id": order_gid,
        "name": name,
        "fulfillments": [{k: f[k] for k in ("id", "status", "trackingInfo")} for f in fulfilments],
        "fulfillmentOrders": {
            "pageInfo": page,
            "nodes": [
                {
                    "id": f"gid://shopify/FulfillmentOrder/{order_id}",
                    "status": status,
                    "assignedLocation": {"location": {"id": service.location_of(redis, shop, SANDBOX_LOCATION)}},
                    "lineItems": {"pageInfo": page, "nodes": nodes},
                }
            ],
        },
    }


def _create(shop: str, fulfillment: dict[str, Any]) -> dict[str, Any]:
    groups = fulfillment.get("lineItemsByFulfillmentOrder") or []
    order_ids = {g["fulfillmentOrderId"].rsplit("/", 1)[-1] for g in groups}
    if len(order_ids) != 1:
        return {
            "fulfillment": None,
            "userErrors": [{"field": ["fulfillment"], "message": "One order per fulfillment."}],
        }
    order_id = order_ids.pop()
    view = _order_view(shop, f"gid://shopify/Order/{order_id}")
    if view is None:
        return {"fulfillment": None, "userErrors": [{"field": ["fulfillment"], "message": "Order not found."}]}
    remaining = {n["id"]: n["remainingQuantity"] for n in view["fulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"]}
    taken: dict[str, int] = {}
    for group in groups:
        items = group.get("fulfillmentOrderLineItems") or [{"id": i, "quantity": q} for i, q in remaining.items() if q]
        for item in items:
            if item["quantity"] > remaining.get(item["id"], 0) - taken.get(item["id"], 0):
                return {"fulfillment": None, "userErrors": [{"field": ["fulfillment"], "message": QUANTITY_ERROR}]}
            taken[item["id"]] = taken.get(item["id"], 0) + item["quantity"]
    redis = runtime().redis
    number = redis.incr(f"relais:sandbox-shop:{shop}:ids")
    info = fulfillment.get("trackingInfo") or {}
    created = {
        "id": f"gid://shopify/Fulfillment/{number}",
        "status": "SUCCESS",
        "trackingInfo": [{k: info.get(k) for k in ("number", "company", "url")}] if info else [],
        "lines": taken,
        "notifyCustomer": bool(fulfillment.get("notifyCustomer")),
    }
    redis.rpush(_key(shop, order_id), json.dumps(created))
    return {"fulfillment": {k: created[k] for k in ("id", "status", "trackingInfo")}, "userErrors": []}


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis MATCH pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _update(shop: str, fulfilment_id: str, tracking: dict[str, Any]) -> dict[str, Any]:
    redis = runtime().redis
    for key in redis.scan_iter(match=_glob_escape(_key(shop, "")) + "*"):
        if key.decode().endswith(":ids"):
            continue
        for index, raw in enumerate(redis.lrange(key, 0, -1)):
            found = json.loads(raw)
            if found["id"] == fulfilment_id:
                found["trackingInfo"] = [{k: tracking.get(k) for k in ("number", "company", "url")}]
                redis.lset(key, index, json.dumps(found))
                return {"fulfillment": {k: found[k] for k in ("id", "status", "trackingInfo")}, "userErrors": []}
    return {"fulfillment": None, "userErrors": [{"field": ["fulfillmentId"], "message": "Fulfillment does not exist."}]}


_SKU_TERM = re.compile(r'sku:"((?:[^"\\]|\\.)*)"')


def _items(shop: str) -> dict[str, str]:
    """SKU → inventory item GID: every SKU the shop's orders carry gets an item, as a catalogue would."""
    redis = runtime().redis
    with runtime().sessions() as session:
        skus = set(
            session.scalars(
                select(OrderLine.sku).join(Order).join(Shop).where(Shop.domain == shop, OrderLine.sku != "").distinct()
            )
        )
    ids_key = f"relais:sandbox-shop:{shop}:item-ids"
    known = {k.decode(): int(v) for k, v in redis.hgetall(ids_key).items()}
    for sku in sorted(skus - known.keys()):
        known[sku] = int(redis.incr(f"relais:sandbox-shop:{shop}:ids")) + 90_000
        redis.hset(ids_key, sku, known[sku])
    return {sku: f"gid://shopify/InventoryItem/{n}" for sku, n in known.items()}


def _available(shop: str, sku: str) -> int:
    # A one-location store: every item is stocked there, at 0 until something is set.
    return int(runtime().redis.hget(f"relais:sandbox-shop:{shop}:stock", sku) or 0)


def _level(shop: str, sku: str) -> dict[str, Any]:
    return {"quantities": [{"name": "available", "quantity": _available(shop, sku)}]}


def _stock_items(shop: str, query: str | None) -> dict[str, Any]:
    wanted = {term.replace('\\"', '"').replace("\\\\", "\\") for term in _SKU_TERM.findall(query or "")}
    nodes = [
        {"id": item, "sku": sku, "tracked": True, "inventoryLevel": _level(shop, sku)}
        for sku, item in sorted(_items(shop).items())
        if not wanted or sku in wanted
    ]
    return {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}


def _stock_levels(shop: str, ids: list[str]) -> list[dict[str, Any] | None]:
    by_id = {item: sku for sku, item in _items(shop).items()}
    return [{"id": i, "inventoryLevel": _level(shop, by_id[i])} if i in by_id else None for i in ids]


def _set_stock(shop: str, data: dict[str, Any]) -> dict[str, Any]:
    """``inventorySetQuantities``: every quantity's ``changeFromQuantity`` must match, or nothing changes."""
    by_id = {item: sku for sku, item in _items(shop).items()}
    stock_key = f"relais:sandbox-shop:{shop}:stock"
    errors = []
    for n, q in enumerate(data.get("quantities") or []):
        sku = by_id.get(q["inventoryItemId"])
        field = ["input", "quantities", str(n)]
        if sku is None:
            errors.append(
                {"field": field, "message": "The inventory item could not be found.", "code": "INVALID_INVENTORY_ITEM"}
            )
            continue
        expected = q.get("changeFromQuantity")
        if expected is not None and expected != _available(shop, sku):
            message = "The specified compare quantity does not match the current quantity."
            errors.append(
                {"field": [*field, "changeFromQuantity"], "message": message, "code": "CHANGE_FROM_QUANTITY_STALE"}
            )
    if errors:
        return {"inventoryAdjustmentGroup": None, "userErrors": errors}
    for q in data.get("quantities") or []:
        runtime().redis.hset(stock_key, by_id[q["inventoryItemId"]], int(q["quantity"]))
    number = runtime().redis.incr(f"relais:sandbox-shop:{shop}:ids")
    return {"inventoryAdjustmentGroup": {"id": f"gid://shopify/InventoryAdjustmentGroup/{number}"}, "userErrors": []}


def _locations(shop: str) -> dict[str, Any]:
    """A one-location store, as a new Shopify shop is, plus the fulfilment service's location
    once Relais has created one (Shopify lists a service's location with the others)."""
    node = {
        "id": SANDBOX_LOCATION,
        "name": SANDBOX_LOCATION_NAME,
        "isActive": True,
        "fulfillsOnlineOrders": True,
        "isFulfillmentService": False,
    }
    nodes = [node]
    own = service.service_location(runtime().redis, shop)
    if own:
        nodes.append({**node, **own, "isFulfillmentService": True})
    return {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": sorted(nodes, key=lambda n: n["name"])}


def _risk(shop: str, order_gid: str) -> dict[str, Any] | None:
    """Shopify's assessment: LOW, or HIGH for an order tagged ``HIGH_RISK_TAG``."""
    with runtime().sessions() as session:
        tags = session.scalar(
            select(Order.tags)
            .join(Shop)
            .where(Shop.domain == shop, Order.platform_order_id == order_gid.rsplit("/", 1)[-1])
        )
    if tags is None:
        return None
    high = HIGH_RISK_TAG in (tags or [])
    facts = [{"description": "Tagged as a test of the fraud hold", "sentiment": "NEGATIVE"}] if high else []
    level = "HIGH" if high else "LOW"
    assessment = {"riskLevel": level, "facts": facts}
    return {"id": order_gid, "risk": {"recommendation": "CANCEL" if high else "ACCEPT", "assessments": [assessment]}}


def _presented_token() -> str:
    token = request.headers.get("X-Shopify-Access-Token", "")
    if not token:
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        token = bearer if scheme.lower() == "bearer" else ""
    return token.strip()


def _authorised(shop: str, token: str) -> bool:
    """Whether ``token`` is the access token stored for ``shop``, a shop registered to use this
    stand-in (its credentials, opened with the vault, say ``sandbox_shop``)."""
    if not token:
        return False
    rt = runtime()
    with rt.sessions() as session:
        sealed = session.scalar(select(Shop.credentials_enc).where(Shop.platform == "shopify", Shop.domain == shop))
    credentials = rt.vault.open(sealed) or {}
    expected = str(credentials.get("access_token") or "")
    return bool(credentials.get("sandbox_shop")) and bool(expected) and hmac.compare_digest(token, expected)


@blueprint.post("/sandbox/shopify/<shop>/admin/api/<version>/graphql.json")
def graphql(shop: str, version: str):  # type: ignore[no-untyped-def]
    if valid_shop(shop) != shop:
        return jsonify(errors="Not Found"), 404
    if not _authorised(shop, _presented_token()):
        return jsonify(errors="[API] Invalid API key or access token (unrecognized login or wrong password)"), 401
    body = request.get_json(silent=True) or {}
    match = _OPERATION.search(body.get("query", ""))
    variables = body.get("variables") or {}
    name = match.group(1) if match else ""
    if name == "RelaisOrderFulfilmentState":
        view = _order_view(shop, variables["id"])
        data: dict[str, Any] = {"order": view and {k: v for k, v in view.items() if k != "name"}}
    elif name == "RelaisFulfilmentCreate":
        data = {"fulfillmentCreate": _create(shop, variables["fulfillment"])}
    elif name == "RelaisTrackingUpdate":
        data = {"fulfillmentTrackingInfoUpdate": _update(shop, variables["id"], variables["tracking"])}
    elif name == "RelaisStockItems":
        data = {"inventoryItems": _stock_items(shop, variables.get("query"))}
    elif name == "RelaisStockLevels":
        data = {"nodes": _stock_levels(shop, variables.get("ids") or [])}
    elif name == "RelaisLocations":
        data = {"locations": _locations(shop)}
    elif name == "RelaisOrderRisk":
        data = {"order": _risk(shop, variables["id"])}
    elif name == "RelaisSetStock":
        data = {"inventorySetQuantities": _set_stock(shop, variables["input"])}
    elif name in service.OPERATIONS:  # fulfilment-service mode (sandbox/shop_fulfilment_service.py)
        data = service.answer(runtime().redis, shop, name, variables, _order_view)
    else:
        message = f"the sandbox shop does not answer {name or 'this document'}"
        return jsonify(errors=[{"message": message, "extensions": {"code": "UNSUPPORTED"}}]), 200
    return jsonify(data=data, extensions={"cost": _COST})
