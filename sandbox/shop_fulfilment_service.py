"""The sandbox shop as a fulfilment-service store: the service, its location, and the request
handshake on its fulfilment orders, for ``./dev serve`` + ``flask demo --fulfilment-service``.

Answers the documents of ``integrations.shopify.fulfilment_service`` and
``integrations.shopify.fulfilment_orders`` (by operation name) as Shopify does: a service name
already taken is a userError; an order's one fulfilment order (``sandbox.shop``) sits at the
service's location once the shop has one; requests are states of the FO, answered only while
waiting. ``request_fulfilment`` / ``request_cancellation`` play the merchant. State in Redis.
"""

from __future__ import annotations

from typing import Any

from redis import Redis

SERVICE_LOCATION = "gid://shopify/Location/2"
OPERATIONS = frozenset(
    {
        "RelaisFulfilmentServices",
        "RelaisFulfilmentServiceCreate",
        "RelaisFulfilmentOrder",
        "RelaisAssignedFulfilmentOrders",
        "RelaisAcceptFulfilmentRequest",
        "RelaisRejectFulfilmentRequest",
        "RelaisAcceptCancellationRequest",
        "RelaisRejectCancellationRequest",
    }
)
ASSIGNMENT = {
    "FULFILLMENT_REQUESTED": "SUBMITTED",
    "CANCELLATION_REQUESTED": "CANCELLATION_REQUESTED",
    "FULFILLMENT_ACCEPTED": "ACCEPTED",
    "FULFILLMENT_UNSUBMITTED": "UNSUBMITTED",
}
# mutation → (request status it answers, request status after, FO status after or None to keep)
ANSWERS = {
    "RelaisAcceptFulfilmentRequest": ("fulfillmentOrderAcceptFulfillmentRequest", "SUBMITTED", "ACCEPTED", None),
    "RelaisRejectFulfilmentRequest": ("fulfillmentOrderRejectFulfillmentRequest", "SUBMITTED", "REJECTED", None),
    "RelaisAcceptCancellationRequest": (
        "fulfillmentOrderAcceptCancellationRequest",
        "CANCELLATION_REQUESTED",
        "CANCELLATION_ACCEPTED",
        "CANCELLED",
    ),
    "RelaisRejectCancellationRequest": (
        "fulfillmentOrderRejectCancellationRequest",
        "CANCELLATION_REQUESTED",
        "CANCELLATION_REJECTED",
        None,
    ),
}


def _service_key(shop: str) -> str:
    return f"relais:sandbox-shop:{shop}:service"


def _fo_key(shop: str) -> str:
    return f"relais:sandbox-shop:{shop}:fo-requests"


def fo_id(order_id: str) -> str:
    return f"gid://shopify/FulfillmentOrder/{order_id}"


def location_of(redis: Redis, shop: str, default: str) -> str:
    """Where the shop's fulfilment orders sit: the service's location once it has one."""
    return SERVICE_LOCATION if redis.exists(_service_key(shop)) else default


def service_location(redis: Redis, shop: str) -> dict[str, str] | None:
    """The service's location as ``locations`` lists it (named after the service), if any."""
    name = redis.hget(_service_key(shop), "serviceName")
    return {"id": SERVICE_LOCATION, "name": name.decode()} if name else None


def request_status(redis: Redis, shop: str, order_id: str) -> str:
    raw = redis.hget(_fo_key(shop), order_id)
    return raw.decode() if raw else "UNSUBMITTED"


def cancelled(redis: Redis, shop: str, order_id: str) -> bool:
    return request_status(redis, shop, order_id) == "CANCELLATION_ACCEPTED"


def request_fulfilment(redis: Redis, shop: str, order_id: str) -> None:
    """The merchant (or Shopify's auto-request) asks the service to fulfil the order."""
    redis.hset(_fo_key(shop), order_id, "SUBMITTED")


def request_cancellation(redis: Redis, shop: str, order_id: str) -> bool:
    """The merchant asks the service to cancel; only an accepted request can be cancelled."""
    if request_status(redis, shop, order_id) != "ACCEPTED":
        return False
    redis.hset(_fo_key(shop), order_id, "CANCELLATION_REQUESTED")
    return True


def answer(redis: Redis, shop: str, name: str, variables: dict[str, Any], order_view: Any) -> dict[str, Any]:
    """``data`` for one of ``OPERATIONS``; ``order_view(shop, order_gid)`` is ``sandbox.shop``'s."""
    service = {k.decode(): v.decode() for k, v in redis.hgetall(_service_key(shop)).items()}
    if name == "RelaisFulfilmentServices":
        return {"shop": {"fulfillmentServices": [_service_view(service)] if service else []}}
    if name == "RelaisFulfilmentServiceCreate":
        if service.get("serviceName") == variables["name"]:
            taken = [{"field": ["name"], "message": "Name has already been taken"}]
            return {"fulfillmentServiceCreate": {"fulfillmentService": None, "userErrors": taken}}
        number = redis.incr(f"relais:sandbox-shop:{shop}:ids")
        service = {
            "id": f"gid://shopify/FulfillmentService/{number}",
            "serviceName": variables["name"],
            "callbackUrl": variables.get("callbackUrl") or "",
        }
        redis.hset(_service_key(shop), mapping=service)
        return {"fulfillmentServiceCreate": {"fulfillmentService": _service_view(service), "userErrors": []}}
    if name == "RelaisFulfilmentOrder":
        return {"fulfillmentOrder": _fo_view(redis, shop, variables["id"], order_view)}
    if name == "RelaisAssignedFulfilmentOrders":
        wanted = ASSIGNMENT.get(variables.get("status") or "", "")
        ids = [fo_id(k.decode()) for k, v in redis.hgetall(_fo_key(shop)).items() if not wanted or v.decode() == wanted]
        nodes = [{"id": i} for i in sorted(ids)] if service else []
        return {"assignedFulfillmentOrders": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}}
    field, waiting, after, _ = ANSWERS[name]
    order_id = str(variables["id"]).rsplit("/", 1)[-1]
    if not service or request_status(redis, shop, order_id) != waiting:
        refused = [
            {"field": ["id"], "message": f"Cannot answer: the request is {request_status(redis, shop, order_id)}"}
        ]
        return {field: {"fulfillmentOrder": None, "userErrors": refused}}
    redis.hset(_fo_key(shop), order_id, after)
    return {field: {"fulfillmentOrder": {"id": variables["id"], "requestStatus": after}, "userErrors": []}}


def _service_view(service: dict[str, str]) -> dict[str, Any]:
    return {
        "id": service["id"],
        "serviceName": service["serviceName"],
        "callbackUrl": service.get("callbackUrl") or None,
        "location": {"id": SERVICE_LOCATION},
    }


def _fo_view(redis: Redis, shop: str, fo_gid: str, order_view: Any) -> dict[str, Any] | None:
    order_id = fo_gid.rsplit("/", 1)[-1]
    view = order_view(shop, f"gid://shopify/Order/{order_id}")
    if view is None:
        return None
    fo = view["fulfillmentOrders"]["nodes"][0]
    status = request_status(redis, shop, order_id)
    return {
        **fo,
        "orderId": f"gid://shopify/Order/{order_id}",
        "orderName": view.get("name") or "",
        "status": "CANCELLED" if status == "CANCELLATION_ACCEPTED" else fo["status"],
        "requestStatus": status,
    }
