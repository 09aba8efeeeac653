"""Shopify stock: the SKU → inventory item map, and ``available`` set by compare-and-set.

Quantities live on inventory levels (item × location); Relais always names the shop's mapped
location, never "the first one". Writes use ``inventorySetQuantities`` (Shopify: for a system that
is the source of truth, which the warehouse is) with, as required from 2026-04:
``changeFromQuantity`` on every quantity (Relais' belief of what the shop shows; a mismatch is
``CHANGE_FROM_QUANTITY_STALE`` and nothing in that request is applied) and an ``@idempotent`` key,
so a request whose answer was lost is sent again safely. Any array input is capped at 250 items
[shopify.dev/api/usage/limits]. Stale items are read back (``nodes``: by id, not through the
search index, which lags) and returned to the caller, who decides what to write: never forced.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from integrations.errors import RetryableError
from integrations.platforms import CatalogueChange, StockChange, StockItem, StockWrite
from integrations.shopify.admin import AdminClient, ShopifyUserError
from integrations.shopify.fulfilment import gid

log = logging.getLogger(__name__)

MAX_INPUT = 250  # Shopify refuses any input array longer than this
ITEMS_PAGE = 250  # 2 + 1 + 250 × 3 = 753 requested points: under the 1000 ceiling of one query
SKUS_PER_QUERY = 50  # SKU look-ups per search query (keeps the query string short)
# A documented reason (shopify.dev, "Manage inventory quantities and states": correction,
# cycle_count_available, damaged, movement_*, other, promotion, quality_control, received,
# reservation_*, restock, safety_stock, shrinkage): the warehouse's count corrects the shop's.
REASON = "correction"
SEND_ATTEMPTS = 3  # the same request, same key, after a lost answer or a concurrent-request refusal

STOCK_ITEMS = """
query RelaisStockItems($first: Int!, $after: String, $query: String, $location: ID!) {
  inventoryItems(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      sku
      tracked
      inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } }
    }
  }
}
"""

STOCK_LEVELS = """
query RelaisStockLevels($ids: [ID!]!, $location: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } }
    }
  }
}
"""

SET_QUANTITIES = """
mutation RelaisSetStock($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}
"""

STALE = "CHANGE_FROM_QUANTITY_STALE"
RESEND = frozenset({"IDEMPOTENCY_CONCURRENT_REQUEST"})
# Refusals about one item: that item is skipped, the rest of its request sent again.
ITEM_REFUSALS = frozenset(
    {"INVALID_INVENTORY_ITEM", "NON_MUTABLE_INVENTORY_ITEM", "INVALID_QUANTITY_NEGATIVE", "INVALID_QUANTITY_TOO_HIGH"}
)


def stock_items(client: AdminClient, location_id: str, skus: Sequence[str] | None = None) -> list[StockItem]:
    """Every inventory item with a SKU (or those with one of ``skus``, exact match), with what it
    shows as available at the location (None: not stocked there)."""
    location = gid("Location", location_id)
    if skus is None:
        return list(_items(client, location, None))
    wanted = sorted({sku for sku in skus if sku})
    found: list[StockItem] = []
    for start in range(0, len(wanted), SKUS_PER_QUERY):
        batch = wanted[start : start + SKUS_PER_QUERY]
        # Shopify's search matches loosely (case, tokens): keep exact SKUs only.
        found.extend(i for i in _items(client, location, " OR ".join(map(_sku_term, batch))) if i.sku in batch)
    return found


def current_levels(client: AdminClient, location_id: str, item_ids: Sequence[str]) -> dict[str, int | None]:
    """What each item shows as available at the location now (None: not stocked there, or gone)."""
    location = gid("Location", location_id)
    levels: dict[str, int | None] = dict.fromkeys(item_ids)
    for start in range(0, len(item_ids), MAX_INPUT):
        ids = list(item_ids[start : start + MAX_INPUT])
        for node in client.query(STOCK_LEVELS, {"ids": ids, "location": location}).get("nodes") or []:
            if node and node.get("id") in levels:
                levels[node["id"]] = _available(node)
    return levels


def set_available(
    client: AdminClient, location_id: str, changes: Sequence[StockChange], idempotency_key: str
) -> StockWrite:
    """Write each change's quantity as ``available`` at the location, ≤250 per request.

    Changes without ``item_id`` are skipped (the caller maps SKUs first). See ``StockWrite``.
    """
    location = gid("Location", location_id)
    reference = f"gid://relais/StockSync/{idempotency_key.split('-', 1)[0]}"
    written: dict[str, int] = {}
    skipped: dict[str, str] = {c.sku: "unknown SKU: not in the SKU map" for c in changes if not c.item_id}
    stale: dict[str, int] = {}
    calls = 0
    mapped = _with_basis(client, location_id, [c for c in changes if c.item_id], skipped, written)
    for number, chunk in enumerate(_chunks(mapped, MAX_INPUT)):
        pending = list(chunk)
        for attempt in range(len(chunk) + 1):  # each refused round removes at least one item
            if not pending:
                break
            key = f"{idempotency_key}-{number}-{attempt}"
            calls += 1
            try:
                _send(client, location, reference, pending, key)
            except ShopifyUserError as exc:
                pending = _refused(client, location_id, pending, exc, skipped, stale)
                continue
            written.update((c.sku, c.quantity) for c in pending)
            pending = []
        for change in pending:
            skipped[change.sku] = "not written: Shopify refused every attempt as stale"
    return StockWrite(written=written, skipped=skipped, calls=calls, stale=stale)


def _with_basis(
    client: AdminClient,
    location_id: str,
    changes: list[StockChange],
    skipped: dict[str, str],
    written: dict[str, int],
) -> list[StockChange]:
    """Changes with no ``expected`` get the shop's current quantity as their compare-and-set basis:
    Relais never writes blind (a sale landing meanwhile is still refused). One already showing
    its quantity (a write whose answer was lost) counts as written without a request."""
    unknown = [c for c in changes if c.expected is None]
    if not unknown:
        return changes
    now = current_levels(client, location_id, [c.item_id for c in unknown])
    based: list[StockChange] = []
    for change in changes:
        if change.expected is None:
            current = now.get(change.item_id)
            if current is None:
                skipped[change.sku] = f"not stocked at location {location_id}"
                continue
            if current == change.quantity:
                written[change.sku] = current
                continue
            change = StockChange(change.sku, change.quantity, current, change.item_id)
        based.append(change)
    return based


def _send(client: AdminClient, location: str, reference: str, changes: list[StockChange], key: str) -> None:
    variables = {
        "key": key,
        "input": {
            "name": "available",
            "reason": REASON,
            "referenceDocumentUri": reference,
            "quantities": [
                # changeFromQuantity is sent even when None: from 2026-04 omitting it is an error.
                {
                    "inventoryItemId": c.item_id,
                    "locationId": location,
                    "quantity": c.quantity,
                    "changeFromQuantity": c.expected,
                }
                for c in changes
            ],
        },
    }
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            client.mutate(SET_QUANTITIES, variables, "inventorySetQuantities")
            return
        except RetryableError:
            # The answer was lost (timeout, 5xx) or the bucket stayed empty: the same key makes
            # a second send harmless, Shopify answers with the first outcome.
            if attempt == SEND_ATTEMPTS:
                raise
            log.info("shopify %s: stock request %s sent again with the same key", client.shop, key)
        except ShopifyUserError as exc:
            if attempt == SEND_ATTEMPTS or not {e.get("code") for e in exc.user_errors} <= RESEND:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _refused(
    client: AdminClient,
    location_id: str,
    pending: list[StockChange],
    exc: ShopifyUserError,
    skipped: dict[str, str],
    stale: dict[str, int],
) -> list[StockChange]:
    """Sort a refused request's items: stale ones read back, refused ones skipped; the rest is
    returned to be sent again. A refusal that names no item (bad reason, bad location) raises."""
    stale_ids: set[int] = set()
    for error in exc.user_errors:
        index = _index(error, len(pending))
        code = error.get("code")
        if code == STALE:
            stale_ids.update({index} if index is not None else range(len(pending)))
        elif code in ITEM_REFUSALS and index is not None:
            skipped[pending[index].sku] = f"refused by Shopify: {error.get('message', code)}"
        else:
            raise exc
    candidates = [pending[i] for i in sorted(stale_ids)]
    now = current_levels(client, location_id, [c.item_id for c in candidates])
    moved = set()
    for change in candidates:
        current = now.get(change.item_id)
        if current is None:
            skipped[change.sku] = f"not stocked at location {location_id} any more"
            moved.add(change.sku)
        elif current != change.expected:
            stale[change.sku] = current
            moved.add(change.sku)
    # Stale by Shopify yet equal on read-back (changed and changed back): sent again, bounded.
    return [c for c in pending if c.sku not in moved and c.sku not in skipped]


def catalogue_change(topic: str, payload: dict[str, Any]) -> CatalogueChange:
    """What an ``inventory_items/*`` or ``products/*`` delivery means for the SKU map.

    ``inventory_items/*`` carry the item (``id``, ``sku``); ``products/*`` their variants (``sku``,
    ``inventory_item_id``). ``products/delete`` names no items: Shopify deletes the variants'
    inventory items too, and their own ``inventory_items/delete`` deliveries say so.
    """
    if topic == "inventory_items/delete":
        return CatalogueChange(deleted_item_ids=frozenset({gid("InventoryItem", str(payload["id"]))}))
    if topic.startswith("inventory_items/"):
        sku = str(payload.get("sku") or "")
        return CatalogueChange(
            skus=frozenset({sku} - {""}), item_ids=frozenset({gid("InventoryItem", str(payload["id"]))})
        )
    if topic in ("products/create", "products/update"):
        variants = [v for v in payload.get("variants") or [] if isinstance(v, dict)]
        return CatalogueChange(
            skus=frozenset(str(v["sku"]) for v in variants if v.get("sku")),
            item_ids=frozenset(
                gid("InventoryItem", str(v["inventory_item_id"])) for v in variants if v.get("inventory_item_id")
            ),
        )
    return CatalogueChange()


def _index(error: dict[str, Any], size: int) -> int | None:
    """The position of the quantity a user error is about: field ["input", "quantities", "3", …]."""
    path = [str(part) for part in error.get("field") or []]
    if "quantities" in path:
        position = path.index("quantities") + 1
        if position < len(path) and path[position].isdigit() and int(path[position]) < size:
            return int(path[position])
    return None


def _items(client: AdminClient, location: str, query: str | None) -> Iterator[StockItem]:
    after = None
    while True:
        variables = {"first": ITEMS_PAGE, "after": after, "query": query, "location": location}
        page = client.query(STOCK_ITEMS, variables)["inventoryItems"]
        for node in page["nodes"]:
            if node.get("sku"):
                yield StockItem(
                    sku=node["sku"], item_id=node["id"], managed=bool(node["tracked"]), quantity=_available(node)
                )
        if not page["pageInfo"]["hasNextPage"]:
            return
        after = page["pageInfo"]["endCursor"]


def _available(node: dict[str, Any]) -> int | None:
    level = node.get("inventoryLevel")
    if not level:
        return None
    for quantity in level.get("quantities") or []:
        if quantity.get("name") == "available":
            return int(quantity["quantity"])
    return None


def _sku_term(sku: str) -> str:
    escaped = sku.replace("\\", "\\\\").replace('"', '\\"')
    return f'sku:"{escaped}"'


def _chunks(items: Sequence[StockChange], size: int) -> Iterator[Sequence[StockChange]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
