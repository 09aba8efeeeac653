"""The fake Shopify's order list: ``orders(first, after, sortKey, query, reverse)`` and the order
fields reconciliation reads, over the orders of ``shopify_fulfilment.FakeState``.

As Shopify documents it: the ``query`` argument is the search syntax (``updated_at:>'2026-11-20T10:00:00Z'``,
terms joined by spaces mean AND); cursors are opaque and carry the sort key of the last node, so a
page boundary does not move when an order changes while we read; timestamps have one-second
resolution. Only ``updated_at`` filters are understood: anything else is refused loudly (a GraphQL
error) so a test never passes on a filter the fake silently ignored.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError

from tests.fakes.shopify_fulfilment import FakeLineItem, FakeOrder, FakeState

TERM = re.compile(r"^updated_at:(>=|<=|>|<)?'?([0-9T:\-+.Z]+)'?$")
ADDRESS = {
    "name": "Bob Norman",
    "firstName": "Bob",
    "lastName": "Norman",
    "company": None,
    "address1": "Chestnut Street 92",
    "address2": "",
    "city": "Louisville",
    "provinceCode": "KY",
    "zip": "40202",
    "countryCodeV2": "US",
    "phone": "+1(502)-459-2181",
}


def iso(moment: datetime) -> str:
    """Shopify's DateTime: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class LineExtras:
    name: str
    requires_shipping: bool = True
    gift_card: bool = False
    current_quantity: int | None = None  # None: the ordered quantity


@dataclass
class OrderRecord:
    """What the order list shows of one order besides its lines and fulfilment orders."""

    updated_at: datetime
    created_at: datetime
    financial_status: str = "PAID"  # OrderDisplayFinancialStatus
    cancelled_at: datetime | None = None
    email: str | None = "bob.norman@mail.example.com"
    phone: str | None = None
    tags: list[str] = field(default_factory=list)
    shipping_address: dict[str, Any] | None = field(default_factory=lambda: dict(ADDRESS))
    shipping_line: dict[str, Any] | None = field(default_factory=lambda: {"title": "Standard", "code": "STD"})
    lines: dict[str, LineExtras] = field(default_factory=dict)  # line item GID → extras


class FakeOrderList:
    """Order records over the fake's orders; shares the server's lock (tests call from their thread)."""

    def __init__(self, state: FakeState, lock: threading.Lock) -> None:
        self.state = state
        self._lock = lock
        self.records: dict[str, OrderRecord] = {}
        self.queries: list[str] = []  # each ``query:`` argument received, in order

    # --- test hooks -------------------------------------------------------------------------
    def put(
        self,
        order_id: int,
        lines: list[tuple[str, int, str]],
        *,
        updated_at: datetime,
        name: str = "#1001",
        created_at: datetime | None = None,
        line_extras: dict[str, dict[str, Any]] | None = None,
        **fields: Any,
    ) -> FakeOrder:
        """An order as the merchant's shop holds it: lines ``(sku, quantity, location GID)`` routed to
        fulfilment orders, plus what the order list shows (``OrderRecord`` fields); extras per SKU."""
        with self._lock:
            order = self.state.add_order(order_id, lines, name)
            extras = line_extras or {}
            record = OrderRecord(updated_at=updated_at, created_at=created_at or updated_at, **fields)
            record.lines = {li.id: LineExtras(name=li.sku, **extras.get(li.sku, {})) for li in order.line_items}
            self.records[order.id] = record
            return order

    def update(self, order_id: int, *, updated_at: datetime, **fields: Any) -> None:
        """The merchant (or Shopify) changes the order: every change moves ``updated_at``."""
        with self._lock:
            record = self.records[f"gid://shopify/Order/{order_id}"]
            record.updated_at = updated_at
            for name, value in fields.items():
                setattr(record, name, value)

    # --- resolvers --------------------------------------------------------------------------
    def root(self) -> dict[str, Any]:
        return {"orders": self._orders, "order": lambda _info, id: self._order_view(id)}

    def _orders(
        self,
        _info: Any,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        reverse: bool = False,
        query: str | None = None,
        sortKey: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        if last is not None or before is not None:
            raise GraphQLError("the fake pages forward only (first/after)")
        if first is None or not 0 < first <= 250:
            raise GraphQLError("first must be between 1 and 250")
        if sortKey not in (None, "ID", "UPDATED_AT"):
            raise GraphQLError(f"the fake does not sort orders by {sortKey}")
        self.queries.append(query or "")
        tests = [_term(t) for t in (query or "").split()]
        keyed = [
            (self._key(gid, record, sortKey), gid)
            for gid, record in self.records.items()
            if all(test(record.updated_at) for test in tests)
        ]
        keyed.sort(reverse=bool(reverse))
        if after:
            mark = tuple(json.loads(base64.b64decode(after)))
            keyed = [k for k in keyed if (k[0] < mark if reverse else k[0] > mark)]
        page = keyed[:first]
        end = base64.b64encode(json.dumps(list(page[-1][0])).encode()).decode() if page else None
        return {
            "nodes": [self._order_view(gid) for _, gid in page],
            "pageInfo": {
                "hasNextPage": len(keyed) > first,
                "hasPreviousPage": bool(after),
                "endCursor": end,
                "startCursor": None,
            },
        }

    @staticmethod
    def _key(gid: str, record: OrderRecord, sort_key: str | None) -> tuple[Any, ...]:
        number = int(gid.rsplit("/", 1)[1])
        if sort_key == "UPDATED_AT":
            return (iso(record.updated_at), number)
        return (number,)

    def _order_view(self, gid: str) -> dict[str, Any] | None:
        order = self.state.orders.get(gid)
        base = self.state.root()["order"](None, gid)
        record = self.records.get(gid)
        if order is None or base is None or record is None:
            return base
        return {
            **base,
            "legacyResourceId": order.legacy_id,
            "email": record.email,
            "phone": record.phone,
            "createdAt": iso(record.created_at),
            "updatedAt": iso(record.updated_at),
            "cancelledAt": iso(record.cancelled_at) if record.cancelled_at else None,
            "displayFinancialStatus": record.financial_status,
            "tags": list(record.tags),
            "shippingAddress": record.shipping_address,
            "shippingLine": record.shipping_line,
            "lineItems": lambda _i, first=None, after=None, **_: _line_page(
                [_line_view(li, record.lines.get(li.id)) for li in order.line_items], first, after
            ),
        }


def _line_view(item: FakeLineItem, extras: LineExtras | None) -> dict[str, Any]:
    extras = extras or LineExtras(name=item.sku)
    current = item.quantity if extras.current_quantity is None else extras.current_quantity
    return {
        "id": item.id,
        "sku": item.sku,
        "name": extras.name,
        "title": extras.name,
        "quantity": item.quantity,
        "currentQuantity": current,
        "requiresShipping": extras.requires_shipping,
        "isGiftCard": extras.gift_card,
    }


def _line_page(items: list[dict[str, Any]], first: int | None, after: str | None) -> dict[str, Any]:
    if first is None or not 0 < first <= 250:
        raise GraphQLError("first must be between 1 and 250")
    start = int(after) if after else 0
    end = start + first
    return {
        "nodes": items[start:end],
        "pageInfo": {
            "hasNextPage": end < len(items),
            "endCursor": str(min(end, len(items))),
            "hasPreviousPage": start > 0,
        },
    }


def _term(term: str) -> Any:
    match = TERM.match(term)
    if match is None:
        raise GraphQLError(f"the fake understands only updated_at filters, not {term!r}")
    op, value = match.group(1) or "", _parse_time(match.group(2))
    compare = {
        ">": lambda t: t > value,
        ">=": lambda t: t >= value,
        "<": lambda t: t < value,
        "<=": lambda t: t <= value,
        "": lambda t: t.replace(microsecond=0) == value,
    }[op]
    return lambda moment: compare(moment.astimezone(UTC).replace(microsecond=0))
