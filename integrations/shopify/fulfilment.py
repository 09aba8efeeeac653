"""Write one parcel back to Shopify as a fulfilment with tracking (fulfillment-orders model).

Shopify splits an order into fulfilment orders (FOs), one per location; a fulfilment consumes
FO line items, and all FOs in one ``fulfillmentCreate`` must share the order and the location
(shopify.dev FulfillmentInput). So a parcel becomes exactly one fulfilment, built only from the
OPEN / IN_PROGRESS FOs assigned to the shop's own location: lines sitting at another location
are never touched, and ``remainingQuantity`` caps what is taken, so a split order gets one
fulfilment per parcel.

Exactly once: before creating, the order's fulfilments are read and one already carrying the
parcel's tracking number is reused. A create whose answer was lost (timeout, 5xx) raises
``RetryableError`` and is never re-sent blindly; the job's next attempt finds it by number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from integrations.carriers import Tracking, resolve
from integrations.errors import ConfigError, InvalidRequestError, NotFoundError
from integrations.model import Shipment
from integrations.platforms import TrackingWrite
from integrations.shopify.admin import AdminClient

log = logging.getLogger(__name__)

WRITABLE_STATUSES = frozenset({"OPEN", "IN_PROGRESS"})

# Sizes keep the requested cost well under Shopify's 1000-point ceiling for one query;
# further FOs and FO lines are paged.
ORDER_FULFILMENT_STATE = """
query RelaisOrderFulfilmentState($id: ID!, $after: String) {
  order(id: $id) {
    id
    fulfillments(first: 30) { id status trackingInfo(first: 3) { number company url } }
    fulfillmentOrders(first: 10, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        status
        assignedLocation { location { id } }
        lineItems(first: 25) {
          pageInfo { hasNextPage endCursor }
          nodes { id totalQuantity remainingQuantity lineItem { id sku } }
        }
      }
    }
  }
}
"""

FULFILMENT_ORDER_LINES = """
query RelaisFulfilmentOrderLines($id: ID!, $after: String) {
  fulfillmentOrder(id: $id) {
    lineItems(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id totalQuantity remainingQuantity lineItem { id sku } }
    }
  }
}
"""

FULFILMENT_CREATE = """
mutation RelaisFulfilmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo(first: 3) { number company url } }
    userErrors { field message }
  }
}
"""

TRACKING_UPDATE = """
mutation RelaisTrackingUpdate($id: ID!, $tracking: FulfillmentTrackingInput!, $notify: Boolean) {
  fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $tracking, notifyCustomer: $notify) {
    fulfillment { id status trackingInfo(first: 3) { number company url } }
    userErrors { field message }
  }
}
"""


@dataclass(frozen=True)
class ParcelLine:
    """Units of one order line in a parcel: matched by Shopify line item id, else by SKU."""

    quantity: int
    platform_line_id: str = ""  # numeric REST id or LineItem GID
    sku: str = ""


@dataclass(frozen=True)
class Parcel:
    """One parcel to write. No lines: everything still open at the location goes in it."""

    tracking: Tracking
    lines: tuple[ParcelLine, ...] = ()


@dataclass(frozen=True)
class ParcelWrite(TrackingWrite):
    """``TrackingWrite`` plus the parcel units that had no open line at the location (not written)."""

    unplaced: tuple[ParcelLine, ...] = field(default=())


class NothingToFulfilError(InvalidRequestError):
    """None of the parcel's units is still open at the location: nothing was written."""


def gid(kind: str, value: str) -> str:
    """``gid://shopify/<kind>/<id>`` from a numeric id; a GID is returned unchanged."""
    value = str(value).strip()
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"


def parcel_from_shipment(shipment: Shipment, postcode: str = "") -> Parcel:
    """A provider's shipment as a parcel: carrier resolved for Shopify, lines matched by SKU."""
    tracking = resolve(shipment.carrier, shipment.tracking_number, shipment.tracking_url, postcode)
    lines = tuple(ParcelLine(quantity=line.quantity, sku=line.sku) for line in shipment.lines)
    return Parcel(tracking=tracking, lines=lines)


def write_parcel(
    client: AdminClient, order_id: str, parcel: Parcel, location_id: str, notify_customer: bool = True
) -> ParcelWrite:
    """Record ``parcel`` on Shopify order ``order_id`` (numeric id or GID) as one fulfilment.

    Idempotent by tracking number: a fulfilment of the order already carrying it is returned
    with ``created=False``. A parcel with no number cannot be recognised later: keep the
    returned id and do not write it again. Raises ``NotFoundError`` (no such order), ``NothingToFulfilError``,
    ``ShopifyUserError``, ``RetryableError`` (answer lost: call again, it will find it).
    """
    order_gid = gid("Order", order_id)
    fulfilments, fos = _read_order(client, order_gid)
    existing = _with_number(fulfilments, parcel.tracking.number)
    if existing:
        return ParcelWrite(platform_fulfilment_id=existing, created=False)
    location = gid("Location", location_id) if location_id else _only_location(fos, parcel, order_id)
    mine = [fo for fo in fos if fo["status"] in WRITABLE_STATUSES and _location_of(fo) == location]
    groups, unplaced = _allocate(mine, fos, parcel.lines)
    if not groups:
        raise NothingToFulfilError(
            f"order {order_id}: nothing of this parcel is still open at {location}",
            details=[line.__dict__ for line in parcel.lines],
        )
    fulfillment: dict[str, Any] = {"lineItemsByFulfillmentOrder": groups, "notifyCustomer": notify_customer}
    info = _tracking_input(parcel.tracking)
    if info:
        fulfillment["trackingInfo"] = info
    payload = client.mutate(FULFILMENT_CREATE, {"fulfillment": fulfillment}, "fulfillmentCreate")
    created_id = payload["fulfillment"]["id"]
    if unplaced:
        log.warning("order %s: fulfilment %s left %d parcel line(s) unplaced", order_id, created_id, len(unplaced))
    return ParcelWrite(platform_fulfilment_id=created_id, created=True, unplaced=tuple(unplaced))


def update_tracking(
    client: AdminClient, fulfilment_id: str, tracking: Tracking, notify_customer: bool
) -> TrackingWrite:
    """Correct the tracking of an existing fulfilment (same parcel, new number or carrier).

    Repeating it changes nothing further. Raises ``ShopifyUserError`` (e.g. unknown fulfilment).
    """
    variables = {
        "id": gid("Fulfillment", fulfilment_id),
        "tracking": _tracking_input(tracking),
        "notify": notify_customer,
    }
    payload = client.mutate(TRACKING_UPDATE, variables, "fulfillmentTrackingInfoUpdate")
    return TrackingWrite(platform_fulfilment_id=payload["fulfillment"]["id"], created=False)


def _only_location(fos: list[dict[str, Any]], parcel: Parcel, order_id: str) -> str:
    """With no location mapped, the one location whose open fulfilment orders hold the parcel's
    lines; several such locations are ambiguous, and a wrong guess would fulfil the wrong
    warehouse's lines, so the merchant must choose."""
    ids = {gid("LineItem", line.platform_line_id) for line in parcel.lines if line.platform_line_id}
    skus = {line.sku for line in parcel.lines if line.sku}
    locations = {
        _location_of(fo)
        for fo in fos
        if fo["status"] in WRITABLE_STATUSES
        and any(
            li["remainingQuantity"]
            and (not parcel.lines or li["lineItem"]["id"] in ids or li["lineItem"]["sku"] in skus)
            for li in fo["lines"]
        )
    } - {None}
    if len(locations) != 1:
        where = ", ".join(sorted(str(x) for x in locations)) or "none"
        raise ConfigError(
            f"order {order_id}: set the shop's location (the provider's stock location) to write fulfilments; "
            f"open lines of this parcel sit at: {where}"
        )
    return str(locations.pop())


def _tracking_input(tracking: Tracking) -> dict[str, str]:
    # Shopify: give `url` only with `number`; an empty company would blank a known one.
    info = {"company": tracking.company, "number": tracking.number}
    if tracking.number and tracking.url:
        info["url"] = tracking.url
    return {k: v for k, v in info.items() if v}


def _read_order(client: AdminClient, order_gid: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The order's fulfilments and all its FOs with all their lines (every page)."""
    fulfilments: list[dict[str, Any]] = []
    fos: list[dict[str, Any]] = []
    after = None
    while True:
        order = client.query(ORDER_FULFILMENT_STATE, {"id": order_gid, "after": after}).get("order")
        if order is None:
            raise NotFoundError(f"Shopify has no order {order_gid} (deleted, or not visible to this app)")
        fulfilments = order["fulfillments"]
        page = order["fulfillmentOrders"]
        for fo in page["nodes"]:
            fo["lines"] = _all_lines(client, fo)
            fos.append(fo)
        if not page["pageInfo"]["hasNextPage"]:
            return fulfilments, fos
        after = page["pageInfo"]["endCursor"]


def _all_lines(client: AdminClient, fo: dict[str, Any]) -> list[dict[str, Any]]:
    page = fo["lineItems"]
    lines = list(page["nodes"])
    while page["pageInfo"]["hasNextPage"]:
        variables = {"id": fo["id"], "after": page["pageInfo"]["endCursor"]}
        page = client.query(FULFILMENT_ORDER_LINES, variables)["fulfillmentOrder"]["lineItems"]
        lines.extend(page["nodes"])
    return lines


def _with_number(fulfilments: Iterable[dict[str, Any]], number: str) -> str | None:
    # A cancelled fulfilment no longer stands for the parcel: it is not reused.
    if not number:
        return None
    for fulfilment in fulfilments:
        if fulfilment["status"] != "CANCELLED" and any(t.get("number") == number for t in fulfilment["trackingInfo"]):
            return str(fulfilment["id"])
    return None


def _location_of(fo: dict[str, Any]) -> str | None:
    location = (fo.get("assignedLocation") or {}).get("location") or {}
    return location.get("id")


def _allocate(
    mine: list[dict[str, Any]], every_fo: list[dict[str, Any]], lines: tuple[ParcelLine, ...]
) -> tuple[list[dict[str, Any]], list[ParcelLine]]:
    """FO line items and quantities for the parcel, grouped by FO, and what found no room."""
    if not lines:  # the provider sent no line detail: all that is open here
        return [
            {"fulfillmentOrderId": fo["id"]} for fo in mine if any(li["remainingQuantity"] for li in fo["lines"])
        ], []
    left = {li["id"]: li["remainingQuantity"] for fo in mine for li in fo["lines"]}
    known_ids = {li["lineItem"]["id"] for fo in every_fo for li in fo["lines"]}
    taken: dict[str, dict[str, int]] = {}
    unplaced: list[ParcelLine] = []
    for line in lines:
        if line.quantity <= 0:
            continue
        line_gid = gid("LineItem", line.platform_line_id) if line.platform_line_id else ""
        if line_gid in known_ids:  # the id is authoritative when Shopify knows it
            candidates = [(fo, li) for fo in mine for li in fo["lines"] if li["lineItem"]["id"] == line_gid]
        else:
            candidates = [
                (fo, li) for fo in mine for li in fo["lines"] if line.sku and li["lineItem"]["sku"] == line.sku
            ]
        need = line.quantity
        for fo, li in candidates:
            take = min(need, left[li["id"]])
            if take > 0:
                left[li["id"]] -= take
                taken.setdefault(fo["id"], {}).setdefault(li["id"], 0)
                taken[fo["id"]][li["id"]] += take
                need -= take
        if need:
            unplaced.append(ParcelLine(quantity=need, platform_line_id=line.platform_line_id, sku=line.sku))
    groups = [
        {"fulfillmentOrderId": fo_id, "fulfillmentOrderLineItems": [{"id": i, "quantity": q} for i, q in items.items()]}
        for fo_id, items in taken.items()
    ]
    return groups, unplaced
