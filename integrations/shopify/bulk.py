"""Shopify bulk operations for the SKU map: one ``bulkOperationRunQuery``, its JSONL read as a stream.

A large catalogue read page by page costs about 3 points per item (400,000 points, over an hour
of a standard plan's bucket, for 100,000 items). A bulk query costs one mutation (10 points),
runs on Shopify's side, and its result is a JSONL file at a signed URL, valid seven days
[shopify.dev: BulkOperation, bulkOperationRunQuery]. The query is written inline (bulk queries
take no variables): the location's GID goes in as a JSON string literal.

An app may run a limited number of bulk queries per shop at a time (one in older versions):
``start`` first looks for a CREATED or RUNNING query of ours with the same document and adopts
it (a start whose answer was lost is not started twice), and reports ``busy`` when Shopify
refuses with ``OPERATION_IN_PROGRESS`` / ``LIMIT_REACHED`` (someone else's: wait, never cancel).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from integrations.platforms import StockExport, StockItem
from integrations.shopify.admin import AdminClient, ShopifyUserError
from integrations.shopify.fulfilment import gid

PLACEHOLDER = '"gid://shopify/Location/0"'  # where the location's GID goes in STOCK_ITEMS_BULK

# The same fields as inventory.STOCK_ITEMS, one JSONL line per item (no nested connection).
STOCK_ITEMS_BULK = """
query RelaisStockItemsBulk {
  inventoryItems {
    edges {
      node {
        id
        sku
        tracked
        inventoryLevel(locationId: "gid://shopify/Location/0") { quantities(names: ["available"]) { name quantity } }
      }
    }
  }
}
"""

RUN_BULK_QUERY = """
mutation RelaisRunBulkQuery($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

BULK_OPERATION = """
query RelaisBulkOperation($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount url partialDataUrl }
}
"""

OPEN_BULK_QUERIES = """
query RelaisOpenBulkQueries {
  bulkOperations(first: 10, query: "operation_type:query AND (status:created OR status:running)") {
    nodes { id status query }
  }
}
"""

VARIANTS_COUNT = """
query RelaisVariantsCount($limit: Int) {
  productVariantsCount(limit: $limit) { count precision }
}
"""

BUSY = frozenset({"OPERATION_IN_PROGRESS", "LIMIT_REACHED"})
OPEN = frozenset({"CREATED", "RUNNING", "CANCELING"})


@dataclass(frozen=True)
class BulkStatus:
    """One reading of an operation: its status, and where its result is once it has one."""

    id: str
    status: str  # CREATED RUNNING COMPLETED FAILED CANCELING CANCELED EXPIRED (None from Shopify: gone)
    error_code: str | None = None
    objects: int = 0
    url: str | None = None


def stock_document(location_id: str) -> str:
    """The bulk query reading every item with what it shows as available at the location."""
    return STOCK_ITEMS_BULK.replace(PLACEHOLDER, json.dumps(gid("Location", location_id)))


def catalogue_size(client: AdminClient, at_least: int) -> int:
    """How many variants (each has one inventory item) the shop has, counted up to ``at_least``."""
    data = client.query(VARIANTS_COUNT, {"limit": max(1, at_least)})
    return int((data.get("productVariantsCount") or {}).get("count") or 0)


def start(client: AdminClient, document: str) -> StockExport:
    """Start the bulk query (or adopt ours already running); ``busy`` when another one blocks it."""
    ours = find_open(client, document)
    if ours:
        return StockExport(id=ours, state="running")
    try:
        payload = client.mutate(RUN_BULK_QUERY, {"query": document}, "bulkOperationRunQuery")
    except ShopifyUserError as exc:
        codes = {e.get("code") for e in exc.user_errors}
        if codes & BUSY:
            return StockExport(id="", state="busy", reason="; ".join(e["message"] for e in exc.user_errors))
        raise
    operation = payload.get("bulkOperation") or {}
    return StockExport(id=str(operation["id"]), state="running")


def find_open(client: AdminClient, document: str) -> str:
    """The id of a CREATED or RUNNING bulk query of this app with exactly this document ("": none)."""
    data = client.query(OPEN_BULK_QUERIES)
    for node in (data.get("bulkOperations") or {}).get("nodes") or []:
        if node and node.get("status") in OPEN and _same(node.get("query"), document):
            return str(node["id"])
    return ""


def status(client: AdminClient, operation_id: str) -> BulkStatus:
    """Where the operation is now; an id Shopify no longer knows reads as EXPIRED."""
    node = client.query(BULK_OPERATION, {"id": operation_id}).get("bulkOperation")
    if not node:
        return BulkStatus(operation_id, "EXPIRED")
    return BulkStatus(
        id=str(node["id"]),
        status=str(node["status"]),
        error_code=node.get("errorCode"),
        objects=int(node.get("objectCount") or 0),
        url=node.get("url"),
    )


def as_export(reading: BulkStatus) -> StockExport:
    """A reading in the platform-neutral terms the stock job decides on."""
    if reading.status in OPEN:
        return StockExport(reading.id, "running", objects=reading.objects)
    if reading.status == "COMPLETED" and reading.url:
        return StockExport(reading.id, "ready", objects=reading.objects)
    if reading.status == "COMPLETED":  # no url: the query matched nothing
        return StockExport(reading.id, "ready", objects=0, empty=True)
    reason = f"bulk operation {reading.status.lower()}"
    if reading.error_code:
        reason += f" ({reading.error_code})"
    return StockExport(reading.id, "failed", reason=reason)


def stock_items(lines: Iterator[dict]) -> Iterator[StockItem]:  # type: ignore[type-arg]
    """Items of the map from the JSONL lines, one at a time. A line with ``__parentId`` belongs
    to a nested connection, which this document has none of: it is skipped, never guessed at."""
    for line in lines:
        if "__parentId" in line or not line.get("sku"):
            continue
        yield StockItem(
            sku=str(line["sku"]), item_id=str(line["id"]), managed=bool(line.get("tracked")), quantity=_available(line)
        )


def _available(node: dict) -> int | None:  # type: ignore[type-arg]
    level = node.get("inventoryLevel")
    if not level:
        return None
    for quantity in level.get("quantities") or []:
        if quantity.get("name") == "available":
            return int(quantity["quantity"])
    return None


def _same(found: object, document: str) -> bool:
    return isinstance(found, str) and " ".join(found.split()) == " ".join(document.split())
