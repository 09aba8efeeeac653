"""Fulfilment orders assigned to Relais' service location: read them, answer their requests.

A request is a state of the FO (``requestStatus``), not a message: the webhook topics, the
``fulfillment_order_notification`` ping and the scheduled ``assignedFulfillmentOrders`` poll only
say *which* FO to read again. Answers are idempotent by checking the state first (the job reads
the FO before answering; an FO no longer ``SUBMITTED`` is not answered twice).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from integrations.shopify.admin import AdminClient

FULFILMENT_ORDER = """
query RelaisFulfilmentOrder($id: ID!, $after: String) {
  fulfillmentOrder(id: $id) {
    id
    orderId
    orderName
    status
    requestStatus
    assignedLocation { location { id } }
    lineItems(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id totalQuantity remainingQuantity lineItem { id sku } }
    }
  }
}
"""

ASSIGNED = """
query RelaisAssignedFulfilmentOrders($status: FulfillmentOrderAssignmentStatus, $locations: [ID!], $after: String) {
  assignedFulfillmentOrders(first: 50, after: $after, assignmentStatus: $status, locationIds: $locations) {
    pageInfo { hasNextPage endCursor }
    nodes { id }
  }
}
"""

ACCEPT_REQUEST = """
mutation RelaisAcceptFulfilmentRequest($id: ID!, $message: String) {
  fulfillmentOrderAcceptFulfillmentRequest(id: $id, message: $message) {
    fulfillmentOrder { id requestStatus }
    userErrors { field message }
  }
}
"""

REJECT_REQUEST = """
mutation RelaisRejectFulfilmentRequest($id: ID!, $reason: FulfillmentOrderRejectionReason, $message: String) {
  fulfillmentOrderRejectFulfillmentRequest(id: $id, reason: $reason, message: $message) {
    fulfillmentOrder { id requestStatus }
    userErrors { field message }
  }
}
"""

ACCEPT_CANCELLATION = """
mutation RelaisAcceptCancellationRequest($id: ID!, $message: String) {
  fulfillmentOrderAcceptCancellationRequest(id: $id, message: $message) {
    fulfillmentOrder { id requestStatus }
    userErrors { field message }
  }
}
"""

REJECT_CANCELLATION = """
mutation RelaisRejectCancellationRequest($id: ID!, $message: String) {
  fulfillmentOrderRejectCancellationRequest(id: $id, message: $message) {
    fulfillmentOrder { id requestStatus }
    userErrors { field message }
  }
}
"""

FO_GID = re.compile(r"^gid://shopify/FulfillmentOrder/\d{1,20}$")
MESSAGE_LIMIT = 255  # a merchant-visible line, not a log


@dataclass(frozen=True)
class FOLine:
    fo_line_id: str
    line_item_id: str  # gid://shopify/LineItem/…
    sku: str
    quantity: int  # what remains to fulfil on this FO

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FulfilmentOrder:
    id: str
    order_id: str  # gid://shopify/Order/…
    order_name: str
    status: str  # OPEN, IN_PROGRESS, ON_HOLD, CLOSED, CANCELLED, …
    request_status: str  # UNSUBMITTED, SUBMITTED, ACCEPTED, CANCELLATION_REQUESTED, …
    location_id: str
    lines: tuple[FOLine, ...]

    @property
    def legacy_order_id(self) -> str:
        return self.order_id.rsplit("/", 1)[-1]


def read(client: AdminClient, fo_id: str) -> FulfilmentOrder | None:
    """The FO now, with every line (paged); None when Shopify has none by that id for us."""
    lines: list[FOLine] = []
    after = None
    while True:
        found = client.query(FULFILMENT_ORDER, {"id": fo_id, "after": after}).get("fulfillmentOrder")
        if found is None:
            return None
        page = found["lineItems"]
        lines.extend(
            FOLine(n["id"], n["lineItem"]["id"], n["lineItem"].get("sku") or "", int(n["remainingQuantity"]))
            for n in page["nodes"]
        )
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    location = ((found.get("assignedLocation") or {}).get("location") or {}).get("id") or ""
    return FulfilmentOrder(
        found["id"],
        found["orderId"],
        found.get("orderName") or "",
        found["status"],
        found["requestStatus"],
        location,
        tuple(lines),
    )


def assigned(client: AdminClient, location_id: str, status: str) -> list[str]:
    """Ids of the FOs at ``location_id`` whose assignment status is ``status``
    (``FULFILLMENT_REQUESTED`` or ``CANCELLATION_REQUESTED``), every page."""
    ids: list[str] = []
    after = None
    while True:
        variables = {"status": status, "locations": [location_id], "after": after}
        page = client.query(ASSIGNED, variables)["assignedFulfillmentOrders"]
        ids.extend(node["id"] for node in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


def accept_request(client: AdminClient, fo_id: str, message: str) -> None:
    variables = {"id": fo_id, "message": message[:MESSAGE_LIMIT]}
    client.mutate(ACCEPT_REQUEST, variables, "fulfillmentOrderAcceptFulfillmentRequest")


def reject_request(client: AdminClient, fo_id: str, reason: str, message: str) -> None:
    variables = {"id": fo_id, "reason": reason, "message": message[:MESSAGE_LIMIT]}
    client.mutate(REJECT_REQUEST, variables, "fulfillmentOrderRejectFulfillmentRequest")


def accept_cancellation(client: AdminClient, fo_id: str, message: str) -> None:
    variables = {"id": fo_id, "message": message[:MESSAGE_LIMIT]}
    client.mutate(ACCEPT_CANCELLATION, variables, "fulfillmentOrderAcceptCancellationRequest")


def reject_cancellation(client: AdminClient, fo_id: str, message: str) -> None:
    variables = {"id": fo_id, "message": message[:MESSAGE_LIMIT]}
    client.mutate(REJECT_CANCELLATION, variables, "fulfillmentOrderRejectCancellationRequest")


def rejection_reason(message: str, fields: Iterable[str] = ()) -> str:
    """Shopify's ``FulfillmentOrderRejectionReason`` for a provider's refusal (pure): the fields it
    names first (``products[0].reference_id``, ``recipient.address.city``), then its words."""
    text = " ".join([*fields, message]).lower()
    if re.search(r"\bsku\b|reference_id|product", text):
        return "INVALID_SKU"
    if re.search(r"address|recipient|city|zip|postcode|country", text):
        return "INCORRECT_ADDRESS"
    if re.search(r"stock|inventory", text):
        return "INVENTORY_OUT_OF_STOCK"
    return "OTHER"


def ids_in(payload: Any) -> list[str]:
    """Every fulfilment-order GID a ``fulfillment_orders/*`` payload names, in order, once each
    (the topics' shapes differ: original/moved/submitted/remaining/split FOs…)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and FO_GID.match(value) and value not in found:
            found.append(value)

    walk(payload)
    return found
