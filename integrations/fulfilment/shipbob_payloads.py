"""ShipBob JSON ⇄ Relais' neutral model, as pure functions (no HTTP, no settings).

Field names follow ShipBob's 2026-07/2026-01 order, shipment and cancel models (create order:
``/api/orders/create-order``; shipment: ``Orders.ShipmentViewModel`` with ``tracking{carrier,
carrier_service, tracking_number, tracking_url}``; cancel: ``status`` Success | Failure |
PartialSuccess with ``canceled_shipment_results[]``). ShipBob publishes no fixed schema per
webhook topic: its webhooks page says a notification carries the resource as the GET endpoint
returns it, and its one published sample (``order.shipment.tracking_received``) is ``{event_time,
order_id, reference_id, status, tracking{carrier, carrier_service, tracking_id, tracking_url}}``.
``parse_event`` therefore reads a shipment, an order holding shipments, or that sample's shape
when it names a ``shipment_id`` (without one, a parcel cannot be told apart from its siblings).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from integrations.errors import InvalidRequestError
from integrations.fulfilment.base import KIND_STATUS, SHIPMENT_TOPIC_KINDS
from integrations.model import (
    CancelResult,
    Order,
    ProviderEvent,
    Shipment,
    ShipmentCancel,
    ShipmentLine,
)

Json = dict[str, Any]

TOPIC_KINDS = SHIPMENT_TOPIC_KINDS
# ShipBob shipment status → ours; "pending" is a shipment not yet in a parcel.
_SHIPMENT_STATUS = {"Cancelled": "cancelled", "OnHold": "on_hold", "Exception": "exception"}


def _drop_empty(data: Json) -> Json:
    return {key: value for key, value in data.items() if value not in (None, "")}


def order_body(order: Order, reference: str) -> Json:
    """The create-order request (ReferenceId product model) for the order's shippable lines.

    ``external_line_id`` is the line's position: ShipBob types it as an integer, and platform line
    ids (Shopify's exceed 2**31) are strings to us.
    """
    address = order.ship_to
    if address is None:
        raise InvalidRequestError("the order has no shipping address")
    lines = order.shippable_lines
    if not lines:
        raise InvalidRequestError("the order has no lines to ship")
    recipient = _drop_empty(
        {
            "name": address.name,
            "email": order.contact.email,
            "phone_number": address.phone or order.contact.phone,
            "address": _drop_empty(
                {
                    "address1": address.address1,
                    "address2": address.address2,
                    "company_name": address.company,
                    "city": address.city,
                    "state": address.province_code,
                    "zip_code": address.zip,
                    "country": address.country_code,
                }
            ),
        }
    )
    products = [
        {"reference_id": line.sku, "name": line.name or line.sku, "quantity": line.quantity, "external_line_id": n}
        for n, line in enumerate(lines, start=1)
    ]
    return _drop_empty(
        {
            "reference_id": reference,
            "order_number": order.name,
            "type": "DTC",
            "shipping_method": order.shipping_method or "Standard",
            "purchase_date": order.created_at.isoformat() if order.created_at else None,
            "recipient": recipient,
            "products": products,
        }
    )


def address_update_body(order: Order) -> Json:
    """``PUT /shipment/{id}:updateAddress``: ``street_address1`` and ``city`` required, the rest
    optional (reference/fulfilment.md, "Editing an order after creation")."""
    address = order.ship_to
    if address is None:
        raise InvalidRequestError("the order has no shipping address")
    return _drop_empty(
        {
            "recipient_name": address.name,
            "company_name": address.company,
            "street_address1": address.address1,
            "street_address2": address.address2,
            "city": address.city,
            "state": address.province_code,
            "zip_code": address.zip,
            "country_code": address.country_code,
            "email": order.contact.email,
            "phone_number": address.phone or order.contact.phone,
        }
    )


def edit_refusal(data: object) -> str:
    """Why a 200 edit answer (``{id, is_success, error{code, message}}``) refused, or "" when it
    succeeded: ShipBob can answer 200 and still refuse."""
    if not isinstance(data, dict) or data.get("is_success", True):
        return ""
    error = data.get("error") or {}
    return " ".join(p for p in (str(error.get("code") or ""), str(error.get("message") or "")) if p) or "refused"


def error_text(details: object) -> str:
    """ShipBob's error body as one line: ``field: message`` pairs, a ProblemDetails or a string."""
    if isinstance(details, dict):
        if "errors" in details and isinstance(details["errors"], dict):
            return error_text(details["errors"])
        parts = []
        for field, messages in details.items():
            items = messages if isinstance(messages, list) else [messages]
            parts.extend(f"{field}: {message}" if field else str(message) for message in items)
        return "; ".join(parts)
    return str(details or "").strip()


def is_duplicate(details: object) -> bool:
    """A 422 that says the reference was used already ("Duplicate reference ID" [docs: /errors])."""
    text = error_text(details).lower()
    return "duplicate" in text and "reference" in text


def cancel_result(data: Json) -> CancelResult:
    """The cancel answer, keeping each shipment's result (an order can be cancelled in part)."""
    shipments = tuple(
        ShipmentCancel(str(item.get("shipment_id")), bool(item.get("is_success")), item.get("reason") or "")
        for item in data.get("canceled_shipment_results") or []
    )
    outcome = {"Success": "cancelled", "PartialSuccess": "partial", "Failure": "too_late"}.get(data.get("status", ""))
    if outcome is None:  # no status: judge by the shipments
        done = [s.cancelled for s in shipments]
        outcome = "cancelled" if all(done) else "too_late" if not any(done) else "partial"
    message = "; ".join(
        f"shipment {s.provider_shipment_id}: {s.reason}" for s in shipments if not s.cancelled and s.reason
    )
    return CancelResult(outcome=outcome, shipments=shipments, message=message)


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _line_quantity(product: Json) -> int:
    """Units of one product in a parcel. ShipBob gives quantities per inventory item; a bundle
    lists each component, so the product count is the smallest component total."""
    per_item: dict[object, int] = defaultdict(int)
    for item in product.get("inventory_items") or []:
        per_item[item.get("id")] += int(item.get("quantity") or 0)
    if per_item:
        return min(per_item.values())
    return int(product.get("quantity") or 0)


def shipment_status(data: Json) -> str:
    tracking = data.get("tracking") or {}
    if data.get("status") in _SHIPMENT_STATUS:
        return _SHIPMENT_STATUS[data["status"]]
    if data.get("delivery_date"):
        return "delivered"
    if tracking.get("tracking_number") or tracking.get("tracking_id"):
        return "shipped"
    return "pending"


def shipment_from(data: Json, *, reference: str = "", order_id: object = "", status: str | None = None) -> Shipment:
    """One ShipBob shipment (API or webhook body) as a neutral ``Shipment``."""
    tracking = data.get("tracking") or {}
    lines = tuple(
        ShipmentLine(sku=p.get("reference_id") or p.get("sku") or "", quantity=_line_quantity(p))
        for p in data.get("products") or []
    )
    details = [d.get("description") or d.get("name") or "" for d in data.get("status_details") or []]
    return Shipment(
        provider_shipment_id=str(data.get("shipment_id") or data.get("id")),
        reference=data.get("reference_id") or reference,
        provider_order_id=str(data.get("order_id") or order_id or ""),
        status=status or shipment_status(data),
        carrier=tracking.get("carrier") or "",
        service=tracking.get("carrier_service") or "",
        tracking_number=tracking.get("tracking_number") or tracking.get("tracking_id") or "",
        tracking_url=tracking.get("tracking_url") or "",
        lines=lines,
        event_time=parse_time(data.get("last_tracking_update_at") or data.get("last_update_at")),
        message="; ".join(d for d in details if d),
    )


def _shipment_in(payload: Json) -> tuple[Json, Json]:
    """(shipment, order-level fields) from a webhook body of any of the shapes above."""
    if isinstance(payload.get("shipments"), list) and payload["shipments"]:
        latest = max(payload["shipments"], key=lambda s: s.get("last_update_at") or "")
        return latest, {"reference_id": payload.get("reference_id"), "order_id": payload.get("id")}
    if payload.get("shipment_id") or (payload.get("id") and payload.get("order_id")):
        return payload, {}
    raise ValueError("the ShipBob webhook body names no shipment")


def parse_event(delivery_id: str, topic: str, payload: Json) -> ProviderEvent:
    """A verified webhook body → one event; ``ValueError`` for a topic or body we cannot read."""
    kind = TOPIC_KINDS.get(topic)
    if kind is None:
        raise ValueError(f"unsupported ShipBob topic {topic!r}")
    data, order = _shipment_in(payload)
    shipment = shipment_from(
        data, reference=order.get("reference_id") or "", order_id=order.get("order_id") or "", status=KIND_STATUS[kind]
    )
    event_time = parse_time(payload.get("event_time")) or shipment.event_time
    return ProviderEvent(delivery_id=delivery_id, kind=kind, event_time=event_time, shipment=shipment)
