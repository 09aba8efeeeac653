"""The privacy (compliance) topics: forget a shop, forget a customer, gather a customer's data.

Payloads (reference/shopify.md §2): ``shop/redact`` ``{shop_id, shop_domain}``;
``customers/redact`` ``{customer: {id, email, phone}, orders_to_redact: [ids]}``;
``customers/data_request`` ``{customer: {...}, orders_requested: [ids], data_request: {id}}``.
A customer is matched by the order ids Shopify names, or by the e-mail or phone on the order.
Raw deliveries are matched by parsing them with the shop's platform adapter, so the rule is the
same for every platform.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jobs.parties import platform_for
from jobs.runtime import Runtime
from store import audit
from store import orders as order_store
from store.app_models import AuditEntry, DataExport
from store.models import (
    FulfilmentAttempt,
    Order,
    OrderLine,
    OrderTransition,
    Shipment,
    Shop,
    WebhookEvent,
    utcnow,
)

log = logging.getLogger(__name__)
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Customer:
    ref: str
    email: str
    phone: str
    order_ids: frozenset[str]

    def owns(self, order_id: str, email: str, phone: str) -> bool:
        return (
            order_id in self.order_ids
            or bool(self.email and email and self.email.lower() == email.lower())
            or bool(self.phone and phone and self.phone == phone)
        )


def _payload(event: WebhookEvent) -> dict[str, Any]:
    payload = json.loads(event.body)
    if not isinstance(payload, dict):
        raise ValueError("privacy payload is not a JSON object")
    return payload


def _customer(payload: dict[str, Any], orders_key: str) -> Customer:
    person = payload.get("customer") or {}
    return Customer(
        ref=str(person.get("id") or ""),
        email=str(person.get("email") or ""),
        phone=str(person.get("phone") or ""),
        order_ids=frozenset(str(i) for i in payload.get(orders_key) or ()),
    )


def _scrub_request(event: WebhookEvent, payload: dict[str, Any]) -> None:
    """The request itself names the customer: keep only its ids once it has been acted on."""
    kept = {k: payload[k] for k in ("shop_id", "shop_domain", "orders_to_redact", "orders_requested") if k in payload}
    kept["customer"] = {"id": (payload.get("customer") or {}).get("id")}
    if "data_request" in payload:
        kept["data_request"] = payload["data_request"]
    event.body = json.dumps(kept).encode()


def _customer_orders(session: Session, shop: Shop, customer: Customer) -> Iterator[Order]:
    rows = session.scalars(select(Order).where(Order.shop_id == shop.id).order_by(Order.id)).all()
    for row in rows:
        contact = row.contact or {}
        if customer.owns(row.platform_order_id, str(contact.get("email") or ""), str(contact.get("phone") or "")):
            yield row


def _customer_events(runtime: Runtime, session: Session, shop: Shop, customer: Customer) -> Iterator[WebhookEvent]:
    """Stored order deliveries about this customer (read through the platform's own parser)."""
    adapter = platform_for(runtime, shop)
    events = session.scalars(
        select(WebhookEvent).where(WebhookEvent.shop_id == shop.id, WebhookEvent.source == shop.platform)
    ).all()
    for event in events:
        if adapter.event_kind(event.topic) != "order":
            continue
        try:
            parsed = adapter.parse_order_event(event.topic, event.body)
        except Exception as exc:  # noqa: BLE001 - unreadable or already redacted: nothing of the customer in it
            log.debug("event %s not read for the redaction: %s", event.id, type(exc).__name__)
            continue
        order = parsed.order
        email, phone = (order.contact.email, order.contact.phone) if order else ("", "")
        if customer.owns(parsed.platform_order_id, email, phone):
            yield event


def redact_customer(runtime: Runtime, session: Session, shop: Shop, event: WebhookEvent) -> str:
    """Anonymise the customer's addresses and contacts in stored orders and raw deliveries."""
    payload = _payload(event)
    customer = _customer(payload, "orders_to_redact")
    orders = list(_customer_orders(session, shop, customer))
    for row in orders:
        if row.ship_to:
            row.ship_to = {k: (v if k == "country_code" else "") for k, v in row.ship_to.items()}
        row.contact = {"email": "", "phone": ""}
        order_store.note(row, "customer's address and contact redacted (customers/redact)", event.id)
    raw = list(_customer_events(runtime, session, shop, customer))
    for stored in raw:
        order_id = stored.body and _order_id(stored.body)
        stored.body = json.dumps({"id": order_id, "redacted": True}).encode()
        stored.headers = {k: v for k, v in (stored.headers or {}).items() if k != "X-Shopify-Shop-Domain"}
        if stored.status in ("received", "enqueued"):
            stored.status, stored.error, stored.processed_at = "ignored", "redacted before processing", utcnow()
    _scrub_request(event, payload)
    summary = f"customer {customer.ref or '?'}: {len(orders)} orders and {len(raw)} deliveries redacted"
    audit.record(session, shop, "customers_redact", summary, {"customer": customer.ref}, "shopify")
    return summary


def _order_id(body: bytes) -> str:
    try:
        value = json.loads(body).get("id")
    except (ValueError, AttributeError):
        return ""
    return str(value) if value is not None else ""


def export_customer(session: Session, shop: Shop, event: WebhookEvent) -> str:
    """Gather what Relais holds on the customer into a download for the merchant."""
    payload = _payload(event)
    customer = _customer(payload, "orders_requested")
    request_id = str((payload.get("data_request") or {}).get("id") or event.id)
    orders = [
        {
            "order": row.name,
            "platform_order_id": row.platform_order_id,
            "state": row.state,
            "ship_to": row.ship_to,
            "contact": row.contact,
            "shipping_method": row.shipping_method,
            "lines": [{"sku": li.sku, "name": li.name, "quantity": li.quantity} for li in row.lines],
            "parcels": [
                {"carrier": s.carrier, "tracking_number": s.tracking_number, "tracking_url": s.tracking_url}
                for s in row.shipments
            ],
            "received_at": row.created_at.isoformat(),
        }
        for row in _customer_orders(session, shop, customer)
    ]
    data = {
        "customer": {"id": customer.ref, "email": customer.email, "phone": customer.phone},
        "orders": orders,
        "held_by": "Relais (fulfilment connector): order copies sent to the fulfilment centre",
        "generated_at": utcnow().isoformat(),
    }
    existing = session.scalar(
        select(DataExport).where(DataExport.shop_id == shop.id, DataExport.request_id == request_id)
    )
    if existing is None:
        session.add(DataExport(shop_id=shop.id, request_id=request_id, customer_ref=customer.ref, data=data))
    else:
        existing.data = data
    _scrub_request(event, payload)
    summary = f"data request {request_id}: {len(orders)} orders gathered for the merchant"
    audit.record(session, shop, "customers_data_request", summary, {"request": request_id}, "shopify")
    return summary


def redact_shop(session: Session, shop: Shop, event: WebhookEvent) -> str:
    """Delete everything kept for the shop. One audit entry, with no shop id, says it was done;
    the ``shop/redact`` delivery itself stays as the record (it holds only the shop's domain)."""
    shop_id, domain = shop.id, shop.domain
    event.shop_id = None  # detached first: the rows deleted below must not take it with them
    session.flush()
    order_ids = select(Order.id).where(Order.shop_id == shop_id).scalar_subquery()
    for model in (Shipment, OrderLine, OrderTransition, FulfilmentAttempt):
        _delete(session, delete(model).where(model.order_id.in_(order_ids)))  # type: ignore[attr-defined]
    _delete(session, delete(Order).where(Order.shop_id == shop_id))
    _delete(session, delete(WebhookEvent).where(WebhookEvent.shop_id == shop_id))
    _delete(session, delete(DataExport).where(DataExport.shop_id == shop_id))
    _delete(session, delete(AuditEntry).where(AuditEntry.shop_id == shop_id))
    _delete(session, delete(Shop).where(Shop.id == shop_id))
    session.expunge(shop)
    session.add(AuditEntry(shop_id=None, shop_domain=domain, kind="shop_redact", summary="all shop data deleted"))
    log.info("shop %s (%s) redacted", shop_id, domain)
    return "shop data deleted"


def _delete(session: Session, statement: Any) -> None:
    # Bulk deletes; nothing they remove is loaded in this session, so no ORM sync is needed.
    session.execute(statement.execution_options(synchronize_session=False))
