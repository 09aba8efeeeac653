"""WooCommerce order payload (REST v3 order, as webhooks and ``GET /orders`` send it) → ``Order``.

Pure: no I/O. The decision in ``jobs/decide.py`` reads only ``paid`` and ``cancelled``, so the
order's *status* is mapped onto them here and the topic that carried it is never looked at
(woocommerce#66995: ``checkout-draft`` orders arrive through ``order.updated``):

- ``processing`` (payment received, awaiting fulfilment) → paid: the only status that ships;
- ``cancelled``, ``refunded``, ``trash`` → cancelled;
- ``pending``, ``on-hold``, ``failed``, ``checkout-draft``, ``completed`` and any custom status
  → neither: recorded and waited on (a merchant's own ``completed`` is not a request to ship).

Lines that need no parcel (virtual or downloadable products, or every line of a local-pickup
order) are kept with ``requires_shipping=False``; the product flags are not in the order
payload, so the caller passes the ids it knows to be non-shippable.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from integrations.model import Address, Contact, Line, Order

SHIP_STATUSES = frozenset({"processing"})
CANCEL_STATUSES = frozenset({"cancelled", "refunded", "trash"})
WAIT_STATUSES = frozenset({"pending", "on-hold", "failed", "checkout-draft", "draft", "auto-draft", "new"})
# Shipping methods whose parcel the customer collects: nothing goes to the 3PL
# (``pickup_location`` is the block checkout's local pickup).
PICKUP_METHODS = ("local_pickup", "pickup_location")


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


def _text(value: Any) -> str:
    return html.unescape(str(value)).strip() if value else ""


class AddressSchema(_Base):
    first_name = fields.String(load_default="", allow_none=True)
    last_name = fields.String(load_default="", allow_none=True)
    company = fields.String(load_default="", allow_none=True)
    address_1 = fields.String(load_default="", allow_none=True)
    address_2 = fields.String(load_default="", allow_none=True)
    city = fields.String(load_default="", allow_none=True)
    state = fields.String(load_default="", allow_none=True)
    postcode = fields.String(load_default="", allow_none=True)
    country = fields.String(load_default="", allow_none=True)
    email = fields.String(load_default="", allow_none=True)
    phone = fields.String(load_default="", allow_none=True)


class LineItemSchema(_Base):
    id = fields.Integer(required=True, strict=True)
    name = fields.String(load_default="", allow_none=True)
    product_id = fields.Integer(load_default=0, allow_none=True)
    variation_id = fields.Integer(load_default=0, allow_none=True)
    quantity = fields.Integer(required=True)
    sku = fields.String(load_default="", allow_none=True)


class ShippingLineSchema(_Base):
    method_title = fields.String(load_default="", allow_none=True)
    method_id = fields.String(load_default="", allow_none=True)


class OrderSchema(_Base):
    id = fields.Integer(required=True, strict=True)
    number = fields.String(load_default="", allow_none=True)
    status = fields.String(required=True)
    date_created_gmt = fields.NaiveDateTime(load_default=None, allow_none=True)
    date_modified_gmt = fields.NaiveDateTime(load_default=None, allow_none=True)
    billing = fields.Nested(AddressSchema, load_default=dict, allow_none=True)
    shipping = fields.Nested(AddressSchema, load_default=dict, allow_none=True)
    line_items = fields.List(fields.Nested(LineItemSchema), required=True)
    shipping_lines = fields.List(fields.Nested(ShippingLineSchema), load_default=list)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return data  # turned into an Order by ``parse_order``, which knows the non-shippable ids


_schema = OrderSchema()


def _utc(value: datetime | None) -> datetime | None:
    # The ``_gmt`` dates are UTC written without a suffix.
    return value.replace(tzinfo=UTC) if value is not None else None


def _address(shipping: Mapping[str, Any], billing: Mapping[str, Any]) -> Address | None:
    s = {k: _text(v) for k, v in shipping.items()}
    if not (s.get("address_1") or s.get("city") or s.get("country")):
        return None  # no shipping address at all: the order is held for the merchant
    return Address(
        name=" ".join(p for p in (s.get("first_name"), s.get("last_name")) if p),
        company=s.get("company", ""),
        address1=s.get("address_1", ""),
        address2=s.get("address_2", ""),
        city=s.get("city", ""),
        province_code=s.get("state", ""),
        zip=s.get("postcode", ""),
        country_code=s.get("country", "").upper(),
        phone=s.get("phone") or _text(billing.get("phone")),  # shipping.phone is often empty
    )


def line_key(product_id: int | None, variation_id: int | None) -> str:
    """The catalogue id a line sells: the variation when there is one, else the product."""
    return str(variation_id or product_id or 0)


def parse_order(
    payload: Mapping[str, Any],
    non_shippable: Collection[str] = (),
    sku_by_id: Mapping[str, str] | None = None,
) -> Order:
    """The neutral order; raises ``marshmallow.ValidationError``.

    ``non_shippable``: catalogue ids (``line_key``) of virtual or downloadable products.
    ``sku_by_id``: SKUs we knew for ids whose line now has none (a deleted product shows ``null``).
    """
    data = _schema.load(payload)
    status = data["status"]
    updated = _utc(data["date_modified_gmt"]) or _utc(data["date_created_gmt"])
    if updated is None:
        raise ValidationError({"date_modified_gmt": ["missing: needed to order deliveries"]})
    billing = data["billing"] or {}
    methods = [m.get("method_id") or "" for m in data["shipping_lines"]]
    pickup = bool(methods) and all(m.startswith(PICKUP_METHODS) for m in methods)
    lines = []
    for item in data["line_items"]:
        key = line_key(item["product_id"], item["variation_id"])
        sku = (item["sku"] or "").strip() or (sku_by_id or {}).get(key, "")
        lines.append(
            Line(
                platform_line_id=str(item["id"]),
                sku=sku,
                name=_text(item["name"]),
                quantity=int(item["quantity"]),
                requires_shipping=not pickup and key not in non_shippable,
            )
        )
    title = next((m.get("method_title") or m.get("method_id") for m in data["shipping_lines"]), "") or ""
    return Order(
        platform_order_id=str(data["id"]),
        name=f"#{data['number'] or data['id']}",
        paid=status in SHIP_STATUSES,
        cancelled=status in CANCEL_STATUSES,
        created_at=_utc(data["date_created_gmt"]),
        updated_at=updated,
        lines=tuple(lines),
        ship_to=_address(data["shipping"] or {}, billing),
        shipping_method=_text(title),
        contact=Contact(email=_text(billing.get("email")), phone=_text(billing.get("phone"))),
    )


def catalogue_ids(payload: Mapping[str, Any]) -> list[tuple[int, int]]:
    """``(product_id, variation_id)`` of each line, to look up which ones ship."""
    return [
        (int(item.get("product_id") or 0), int(item.get("variation_id") or 0))
        for item in payload.get("line_items") or []
        if isinstance(item, Mapping)
    ]
