"""``orders/edited``: Shopify's order-edit webhook carries the edit, not the order.

Its body is ``{"order_edit": {id, order_id, line_items: {additions, removals}, …}}``
(reference/shopify.md §9), so the order as it stands after the edit is read back with GraphQL
``order(id:)`` (the same fields reconciliation reads) and mapped by the webhook normaliser, like
every other order delivery: the pipeline compares it with what the provider holds.
``orders/updated`` also follows every edit; whichever comes first is applied and the other is
then a repeat (no second change is sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.model import Order
from integrations.platforms import UnreadableOrder
from integrations.shopify.admin import AdminClient
from integrations.shopify.reconcile import ORDER_FIELDS, all_lines, to_order

TOPIC = "orders/edited"

ORDER_AFTER_EDIT = (
    """
query RelaisOrderAfterEdit($id: ID!) {
  order(id: $id) {"""
    + ORDER_FIELDS
    + """  }
}
"""
)


def edited_order_id(payload: Mapping[str, Any]) -> str:
    """The order an ``orders/edited`` body is about; ``ValueError`` when it names none."""
    edit = payload.get("order_edit")
    order_id = edit.get("order_id") if isinstance(edit, Mapping) else None
    if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not str(order_id).isdigit():
        raise ValueError("orders/edited body names no order_edit.order_id")
    return str(order_id)


def order_after_edit(admin: AdminClient, order_id: str) -> Order:
    """The order as Shopify holds it now; ``ValueError`` when the shop no longer has it."""
    node = admin.query(ORDER_AFTER_EDIT, {"id": f"gid://shopify/Order/{order_id}"}).get("order")
    if not node:
        raise ValueError(f"Shopify has no order {order_id} to read after its edit")
    order = to_order(node, all_lines(admin, node))
    if isinstance(order, UnreadableOrder):
        raise ValueError(order.error)
    return order
