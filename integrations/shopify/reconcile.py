"""Shopify orders changed since a moment, read through GraphQL, as the same neutral ``Order`` the
webhooks give.

Why: Shopify's docs say not to rely on webhooks alone (deliveries are dropped after 8 failed
tries, subscriptions vanish, protected-data approval may be missing), so reconciliation asks the
shop itself. ``orders(sortKey: UPDATED_AT, query: "updated_at:>'…'")`` pages oldest change first;
each page costs what ``ORDERS_CHANGED`` requests (about 620 points: 20 orders × 25 lines), which
the admin client paces against the shop's ``throttleStatus`` and waits out on ``THROTTLED``.

Mapping: each GraphQL order is rewritten into the REST Order shape the webhooks carry and given
to the webhook normaliser (``orders.parse_order``), so both paths share one set of rules (string
ids from the GIDs, current quantities, gift cards never shipped, the first shipping line, tags,
paid = ``paid``/``partially_refunded``) and ``jobs.decide`` cannot tell them apart. An order with
more lines than a page holds has the rest read with ``ORDER_LINE_ITEMS`` before it is mapped:
half an order is never pushed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError

from integrations.model import Order
from integrations.platforms import UnreadableOrder
from integrations.shopify.admin import AdminClient
from integrations.shopify.orders import parse_order

# Page sizes are literals in the documents (so the schema test prices them as sent): 20 orders,
# 25 line items each; an order with more lines has the rest read 100 at a time.

# The order fields every reader of whole orders asks for (here and ``order_edits``), mapped by
# ``to_order`` through the webhook normaliser.
ORDER_FIELDS = """
      id
      name
      email
      phone
      createdAt
      updatedAt
      cancelledAt
      displayFinancialStatus
      tags
      shippingAddress {
        name firstName lastName company address1 address2 city provinceCode zip countryCodeV2 phone
      }
      shippingLine { title code }
      lineItems(first: 25) {
        nodes { id sku name quantity currentQuantity requiresShipping isGiftCard }
        pageInfo { hasNextPage endCursor }
      }
"""

ORDERS_CHANGED = (
    """
query RelaisOrdersChangedSince($query: String!, $after: String) {
  orders(first: 20, after: $after, sortKey: UPDATED_AT, query: $query) {
    nodes {"""
    + ORDER_FIELDS
    + """    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
)

ORDER_LINE_ITEMS = """
query RelaisOrderLineItems($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: 100, after: $after) {
      nodes { id sku name quantity currentQuantity requiresShipping isGiftCard }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


def search_after(since: datetime) -> str:
    """The ``query:`` argument for orders updated after ``since`` (Shopify compares in UTC, whole
    seconds; rounding down re-reads at most one second more)."""
    return f"updated_at:>'{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"


def orders_changed_since(admin: AdminClient, since: datetime) -> Iterator[Order | UnreadableOrder]:
    """Every order updated after ``since``, oldest change first, each mapped as its webhook would be;
    one the normaliser refuses comes as ``UnreadableOrder`` with why.

    Raises what the admin client raises (``RetryableError`` when throttled longer than it waits,
    ``AuthError`` without ``read_orders``, ``InvalidRequestError``).
    """
    variables: dict[str, Any] = {"query": search_after(since), "after": None}
    while True:
        connection = (admin.query(ORDERS_CHANGED, variables).get("orders")) or {}
        for node in connection.get("nodes") or []:
            yield to_order(node, all_lines(admin, node))
        page = connection.get("pageInfo") or {}
        if not page.get("hasNextPage") or not page.get("endCursor"):
            return
        variables = {**variables, "after": page["endCursor"]}


def all_lines(admin: AdminClient, node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every line of an order read with ``ORDER_FIELDS``: the first 25 came with it, the rest
    100 a page (``ORDER_LINE_ITEMS``)."""
    connection = node.get("lineItems") or {}
    lines = list(connection.get("nodes") or [])
    page = connection.get("pageInfo") or {}
    while page.get("hasNextPage") and page.get("endCursor"):
        more = (admin.query(ORDER_LINE_ITEMS, {"id": node["id"], "after": page["endCursor"]}).get("order") or {}).get(
            "lineItems"
        ) or {}
        lines.extend(more.get("nodes") or [])
        page = more.get("pageInfo") or {}
    return lines


def to_order(node: dict[str, Any], lines: list[dict[str, Any]]) -> Order | UnreadableOrder:
    """One GraphQL order (with all its lines) as the webhook normaliser maps it."""
    try:
        return parse_order(rest_order(node, lines))
    except (ValidationError, ValueError, KeyError, TypeError) as exc:
        updated = node.get("updatedAt")
        try:
            when = datetime.fromisoformat(str(updated).replace("Z", "+00:00")) if updated else None
        except ValueError:
            when = None
        order_id = str(node.get("id") or "").rsplit("/", 1)[-1]
        return UnreadableOrder(platform_order_id=order_id, updated_at=when, error=f"unreadable order: {exc}")


def legacy_id(gid: str) -> str:
    """``gid://shopify/Order/820982911946154508`` → ``"820982911946154508"`` (kept a string:
    Shopify ids exceed 2**53 and must never pass through a float)."""
    tail = str(gid).rsplit("/", 1)[-1].split("?", 1)[0]
    if not tail.isdigit():
        raise ValueError(f"not a Shopify GID: {gid!r}")
    return tail


def rest_order(node: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The GraphQL order in the REST Order shape ``orders.parse_order`` reads (webhook field names)."""
    address = node.get("shippingAddress")
    shipping = node.get("shippingLine")
    status = node.get("displayFinancialStatus")
    return {
        "id": legacy_id(node["id"]),
        "admin_graphql_api_id": node["id"],
        "name": node.get("name") or "",
        "email": node.get("email"),
        "phone": node.get("phone"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "financial_status": str(status).lower() if status else None,  # PARTIALLY_REFUNDED → partially_refunded
        "tags": ", ".join(node.get("tags") or []),
        "shipping_address": _rest_address(address) if address else None,
        "shipping_lines": [{"title": shipping.get("title"), "code": shipping.get("code")}] if shipping else [],
        "line_items": [_rest_line(line) for line in lines],
    }


def _rest_address(address: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": address.get("name"),
        "first_name": address.get("firstName"),
        "last_name": address.get("lastName"),
        "company": address.get("company"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "province_code": address.get("provinceCode"),
        "zip": address.get("zip"),
        "country_code": address.get("countryCodeV2"),
        "phone": address.get("phone"),
    }


def _rest_line(line: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": legacy_id(line["id"]),
        "admin_graphql_api_id": line["id"],
        "sku": line.get("sku"),
        "name": line.get("name"),
        "quantity": line.get("quantity"),
        "current_quantity": line.get("currentQuantity"),
        "requires_shipping": line.get("requiresShipping", True),
        "gift_card": bool(line.get("isGiftCard")),
    }
