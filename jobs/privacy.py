"""The privacy (compliance) topics: forget a shop, forget a customer, gather a customer's data.

Payloads (reference/shopify.md §2): ``shop/redact`` ``{shop_id, shop_domain}``;
``customers/redact`` ``{customer: {id, email, phone}, orders_to_redact: [ids]}``;
``customers/data_request`` ``{customer: {...}, orders_requested: [ids], data_request: {id}}``.
A customer is matched by the order ids Shopify names, or by the e-mail or phone on the order.

A redaction is complete and local. Complete: every copy Relais keeps is covered (orders, their
lines, timeline, provider attempts, stored deliveries and their kept headers, data exports, the
audit log, merchant notices, Redis values), and copies kept by optional parts (the development
sandbox) through redactors they register here (``register_redactor``): product code never
imports them. Local: nothing is fetched; stored deliveries are read with the platforms' pure
normalisers, or as raw text when they do not parse (``jobs.redaction``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from integrations import jsonbody
from integrations.errors import WebhookRejected
from integrations.fulfilment.reference import make_reference
from jobs.redaction import REDACTED, Redaction, blank_address, collect, delivery_match
from jobs.runtime import Runtime, get_runtime
from store import audit
from store import orders as order_store
from store.app_models import AuditEntry, DataExport
from store.edit_models import OrderEdit, SentSnapshot
from store.models import Base, Order, Shop, WebhookEvent, utcnow
from store.sync_models import ShopSync
from store.woocommerce_models import WooConnectState

log = logging.getLogger(__name__)
__all__ = ["REDACTED", "Redaction", "register_redactor"]

#: A redactor removes the copies one optional part keeps; it runs in the redaction's transaction
#: (``session``) and must not call out. Registered once per process (``register_redactor``).
Redactor = Callable[[Runtime, Session, Redaction], None]
_REDACTORS: list[Redactor] = []


def register_redactor(redactor: Redactor) -> None:
    """Have ``redactor`` run in every customer and shop redaction (idempotent)."""
    if redactor not in _REDACTORS:
        _REDACTORS.append(redactor)


def _run_redactors(runtime: Runtime, session: Session, redaction: Redaction) -> None:
    for redactor in list(_REDACTORS):
        redactor(runtime, session, redaction)


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
    try:
        return jsonbody.parse_object(event.body)
    except WebhookRejected as exc:
        raise ValueError(f"privacy payload unreadable: {exc}") from None


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


def _shop_redaction(session: Session, shop: Shop, customer: Customer, orders: list[Order]) -> Redaction:
    contacts = [copy for row in orders for copy in (row.contact, row.ship_to)]
    identifiers, words = collect(customer.email, customer.phone, contacts)
    references = {row.provider_reference or "" for row in orders}
    for row in orders:
        references.update(make_reference(shop.id, row.platform_order_id, g) for g in range(1, row.generation + 1))
    return Redaction(
        kind="customer",
        shop_id=shop.id,
        shop_domain=shop.domain,
        platform=shop.platform,
        platform_order_ids=customer.order_ids | {row.platform_order_id for row in orders},
        references=frozenset(r for r in references if r),
        identifiers=identifiers,
        needles=words,
    )


def redact_customer(runtime: Runtime, session: Session, shop: Shop, event: WebhookEvent) -> str:
    """Remove the customer's contact, name and address from every copy Relais keeps of them."""
    payload = _payload(event)
    customer = _customer(payload, "orders_to_redact")
    orders = list(_customer_orders(session, shop, customer))
    redaction = _shop_redaction(session, shop, customer, orders)
    for row in orders:
        row.ship_to = blank_address(row.ship_to)
        row.contact = {"email": "", "phone": ""}
        row.failure_reason = redaction.scrub(row.failure_reason)
        for line in row.lines:
            line.name = redaction.scrub(line.name)
        for step in row.history:
            step.reason = redaction.scrub(step.reason)
        for attempt in row.attempts:
            attempt.detail = redaction.scrub(attempt.detail)
        _redact_sent(session, row.id, redaction)
        order_store.note(row, "customer's address and contact redacted (customers/redact)", event.id)
    raw = _redact_deliveries(session, shop, event, redaction)
    exports = _redact_records(session, shop, customer, redaction)
    _redact_redis(runtime, redaction)
    _run_redactors(runtime, session, redaction)
    _scrub_request(event, payload)
    summary = f"customer {customer.ref or '?'}: {len(orders)} orders, {raw} deliveries and {exports} exports redacted"
    audit.record(session, shop, "customers_redact", summary, {"customer": customer.ref}, "shopify")
    return summary


def _redact_deliveries(session: Session, shop: Shop, request: WebhookEvent, redaction: Redaction) -> int:
    """Every stored delivery of the shop (any source) naming the customer or their orders is
    replaced by a stub; in the others, kept headers and errors lose any needle."""
    events = session.scalars(select(WebhookEvent).where(WebhookEvent.shop_id == shop.id, WebhookEvent.id != request.id))
    redacted = 0
    for stored in events:
        matched, order_id = delivery_match(redaction, stored.source, stored.topic, stored.body or b"")
        if matched or redaction.mentions(stored.headers or {}):
            stored.body = json.dumps({"id": order_id, "redacted": True}).encode()
            if stored.status in ("received", "enqueued"):
                stored.status, stored.error, stored.processed_at = "ignored", "redacted before processing", utcnow()
            redacted += 1
        stored.headers = redaction.scrub(stored.headers or {})
        stored.error = redaction.scrub(stored.error)
    return redacted


def _redact_records(session: Session, shop: Shop, customer: Customer, redaction: Redaction) -> int:
    """The customer's data exports are deleted; audit entries and the merchant's notice scrubbed."""
    removed = 0
    for export in session.scalars(select(DataExport).where(DataExport.shop_id == shop.id)):
        if (customer.ref and export.customer_ref == customer.ref) or redaction.mentions(export.data):
            session.delete(export)
            removed += 1
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.shop_id == shop.id)):
        entry.summary = redaction.scrub(entry.summary)
        entry.detail = redaction.scrub(entry.detail)
    sync = session.get(ShopSync, shop.id)
    if sync is not None and sync.notice:
        sync.notice = redaction.scrub(sync.notice)
    return removed


def _redis_keys(redaction: Redaction) -> Iterator[str]:
    """Relais' own Redis keys about the shop (shop redact) or the customer's orders."""
    sid, domain = redaction.shop_id, _glob(redaction.shop_domain)
    if redaction.kind == "shop":
        yield from (
            f"relais:woo:echo:{sid}:*",
            f"relais:woo:*:{domain}",
            f"relais:woo:batch-limit:{sid}",
            f"relais:woo:sku:{sid}",
            f"relais:woo:skuid:{sid}",
            f"relais:woo:ships:{sid}",
            f"relais:stock:unknown-lookup:{sid}",
        )
    else:
        yield from (f"relais:woo:echo:{sid}:order:{_glob(oid)}" for oid in sorted(redaction.platform_order_ids))


def _redact_redis(runtime: Runtime, redaction: Redaction) -> None:
    """Delete Relais' keys about what is redacted, then any ``relais:*`` value naming the customer."""
    redis = runtime.redis
    if redis is None:
        return
    for pattern in _redis_keys(redaction):
        for key in redis.scan_iter(match=pattern, count=500):
            redis.delete(key)
    if not redaction.identifiers:
        return
    for key in redis.scan_iter(match="relais:*", count=500):
        if redaction.mentions(_redis_values(redis, key)):
            redis.delete(key)


def _redis_values(redis: Any, key: bytes) -> list[bytes]:
    kind = redis.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        return [redis.get(key) or b""]
    if kind == "list":
        return list(redis.lrange(key, 0, -1))
    if kind == "hash":
        return [part for pair in redis.hgetall(key).items() for part in pair]
    if kind == "set":
        return list(redis.smembers(key))
    if kind == "zset":
        return list(redis.zrange(key, 0, -1))
    return []


def _glob(text: str) -> str:
    """``text`` as a literal inside a Redis MATCH pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


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


def _redact_sent(session: Session, order_id: int, redaction: Redaction) -> None:
    """The copy of the address and lines kept as what the provider holds, and the edits' texts."""
    snapshot = session.get(SentSnapshot, order_id)
    if snapshot is not None:
        snapshot.ship_to = blank_address(snapshot.ship_to)
        snapshot.lines = [{**line, "name": redaction.scrub(line.get("name") or "")} for line in snapshot.lines]
    for edit in session.scalars(select(OrderEdit).where(OrderEdit.order_id == order_id)):
        edit.changes, edit.reason = redaction.scrub(edit.changes), redaction.scrub(edit.reason)


def redact_shop(session: Session, shop: Shop, event: WebhookEvent, runtime: Runtime | None = None) -> str:
    """Delete everything kept for the shop: every table's rows with its ``shop_id`` (and their
    orders' rows), its Redis keys, and what registered redactors hold (the sandbox's copies).
    One audit entry, with no shop id, says it was done; the ``shop/redact`` delivery itself stays
    as the record (it holds only the shop's domain)."""
    runtime = runtime or get_runtime()
    shop_id, domain = shop.id, shop.domain
    orders = session.execute(
        select(Order.platform_order_id, Order.provider_reference).where(Order.shop_id == shop_id)
    ).all()
    redaction = Redaction(
        kind="shop",
        shop_id=shop_id,
        shop_domain=domain,
        platform=shop.platform,
        platform_order_ids=frozenset(row.platform_order_id for row in orders),
        references=frozenset(row.provider_reference for row in orders if row.provider_reference),
    )
    event.shop_id = None  # detached first: the rows deleted below must not take it with them
    session.flush()
    order_ids = select(Order.id).where(Order.shop_id == shop_id).scalar_subquery()
    tables = list(reversed(Base.metadata.sorted_tables))  # children first
    for table in tables:
        if "order_id" in table.c and any(fk.column.table.name == "orders" for fk in table.c.order_id.foreign_keys):
            _delete(session, delete(table).where(table.c.order_id.in_(order_ids)))
    for table in tables:
        if "shop_id" in table.c and table.name != "shops":
            _delete(session, delete(table).where(table.c.shop_id == shop_id))
    _delete(session, delete(WooConnectState).where(WooConnectState.store_url == domain))
    _delete(session, delete(Shop).where(Shop.id == shop_id))
    session.expunge(shop)
    _redact_redis(runtime, redaction)
    _run_redactors(runtime, session, redaction)
    session.add(AuditEntry(shop_id=None, shop_domain=domain, kind="shop_redact", summary="all shop data deleted"))
    log.info("shop %s (%s) redacted", shop_id, domain)
    return "shop data deleted"


def _delete(session: Session, statement: Any) -> None:
    # Bulk deletes; nothing they remove is loaded in this session, so no ORM sync is needed.
    session.execute(statement.execution_options(synchronize_session=False))
