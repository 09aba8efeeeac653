"""Shopify order payload (REST Order object, as webhooks send it) → the neutral ``Order``.

Pure: no I/O. The marshmallow schema names every field we rely on and ignores the rest, so a
payload missing what we need fails loudly with ``ValidationError`` instead of a half-order.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, post_load

from integrations.model import Address, Contact, Line, Order

# financial_status values meaning the money was captured (partially_refunded: it was paid).
PAID_STATUSES = frozenset({"paid", "partially_refunded"})


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class AddressSchema(_Base):
    name = fields.String(load_default="", allow_none=True)
    first_name = fields.String(load_default="", allow_none=True)
    last_name = fields.String(load_default="", allow_none=True)
    company = fields.String(load_default="", allow_none=True)
    address1 = fields.String(load_default="", allow_none=True)
    address2 = fields.String(load_default="", allow_none=True)
    city = fields.String(load_default="", allow_none=True)
    province_code = fields.String(load_default="", allow_none=True)
    zip = fields.String(load_default="", allow_none=True)
    country_code = fields.String(load_default="", allow_none=True)
    phone = fields.String(load_default="", allow_none=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Address:
        d = {k: (v or "") for k, v in data.items()}
        name = d["name"] or " ".join(p for p in (d["first_name"], d["last_name"]) if p)
        return Address(
            name=name,
            address1=d["address1"],
            address2=d["address2"],
            company=d["company"],
            city=d["city"],
            province_code=d["province_code"],
            zip=d["zip"],
            country_code=d["country_code"],
            phone=d["phone"],
        )


class LineItemSchema(_Base):
    id = fields.Raw(required=True)
    sku = fields.String(load_default="", allow_none=True)
    name = fields.String(load_default="", allow_none=True)
    quantity = fields.Integer(required=True)
    current_quantity = fields.Integer(load_default=None, allow_none=True)
    requires_shipping = fields.Boolean(load_default=True)
    gift_card = fields.Boolean(load_default=False)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Line:
        # current_quantity drops units removed by edits and refunds; older payloads lack it.
        qty = data["current_quantity"] if data["current_quantity"] is not None else data["quantity"]
        return Line(
            platform_line_id=str(data["id"]),
            sku=(data["sku"] or "").strip(),
            name=data["name"] or "",
            quantity=int(qty),
            requires_shipping=bool(data["requires_shipping"]) and not data["gift_card"],
        )


class ShippingLineSchema(_Base):
    title = fields.String(load_default="", allow_none=True)
    code = fields.String(load_default="", allow_none=True)


class OrderSchema(_Base):
    id = fields.Raw(required=True)
    name = fields.String(load_default="", allow_none=True)
    financial_status = fields.String(load_default="", allow_none=True)
    cancelled_at = fields.DateTime(load_default=None, allow_none=True)
    created_at = fields.AwareDateTime(load_default=None, allow_none=True)
    updated_at = fields.AwareDateTime(required=True)
    email = fields.String(load_default="", allow_none=True)
    contact_email = fields.String(load_default="", allow_none=True)
    phone = fields.String(load_default="", allow_none=True)
    tags = fields.String(load_default="", allow_none=True)
    line_items = fields.List(fields.Nested(LineItemSchema), required=True)
    shipping_address = fields.Nested(AddressSchema, load_default=None, allow_none=True)
    shipping_lines = fields.List(fields.Nested(ShippingLineSchema), load_default=list)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Order:
        method = data["shipping_lines"][0] if data["shipping_lines"] else {}
        tags = tuple(t.strip() for t in (data["tags"] or "").split(",") if t.strip())
        return Order(
            platform_order_id=str(data["id"]),
            name=data["name"] or "",
            paid=(data["financial_status"] or "") in PAID_STATUSES,
            cancelled=data["cancelled_at"] is not None,
            created_at=data["created_at"],
            updated_at=data["updated_at"],
            lines=tuple(data["line_items"]),
            ship_to=data["shipping_address"],
            shipping_method=(method.get("title") or method.get("code") or "") if method else "",
            contact=Contact(
                email=data["email"] or data["contact_email"] or "",
                phone=data["phone"] or "",
            ),
            tags=tags,
        )


_schema = OrderSchema()


def parse_order(payload: dict[str, Any]) -> Order:
    """The neutral order for a Shopify order payload; raises ``marshmallow.ValidationError``."""
    if isinstance(payload.get("id"), float):
        raise ValueError("order id arrived as a float; ids must stay integers or strings")
    return _schema.load(payload)  # type: ignore[no-any-return]
