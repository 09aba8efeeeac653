"""Stock on a WooCommerce store: list the SKU-carrying items, write absolute quantities in batches.

WooCommerce has no atomic adjust (``inventory_delta`` is a read-modify-write in PHP,
woocommerce#7673, #21808) and no compare-and-set, so we write the absolute ``stock_quantity``
with ``manage_stock: true`` (the quantity only applies when stock is managed). The caller's
compare-and-set (``expected``) is honoured by reading the items' quantities just before the
batch: a quantity that moved is reported ``stale`` and not written. The window between that read
and the write remains; small, frequent batches keep it short (reference §11.10).

Simple products go through ``POST /products/batch``, variations through
``/products/<parent>/variations/batch`` (the products endpoint refuses variations), at most 100
items per request: a 413 halves the chunk and the caller keeps the smaller size. A batch answers
200 even when items fail: every ``{"id", "error"}`` item is reported in ``skipped``, never lost.
Absolute writes are idempotent, so a batch whose answer was lost may be sent again.

An item's id is ``"<id>"`` for a product and ``"<parent>/<id>"`` for a variation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from integrations.platforms import StockChange, StockItem, StockWrite
from integrations.woocommerce.catalogue import FIELDS, Catalogue
from integrations.woocommerce.client import BatchTooLarge, WooClient

BATCH_LIMIT = 100
# WooCommerce keeps one stock figure per product: the one shop location the stock sync writes to.
LOCATION = "store"
READ_FIELDS = "id,parent_id,manage_stock,stock_quantity"


def item_id(product: dict[str, Any]) -> str:
    parent = int(product.get("parent_id") or 0)
    return f"{parent}/{product['id']}" if parent else str(product["id"])


def split_item_id(value: str) -> tuple[int, int]:
    """``"45/123"`` → (45, 123); ``"123"`` → (0, 123)."""
    parent, _, own = value.rpartition("/")
    return int(parent or 0), int(own)


def as_item(product: dict[str, Any]) -> StockItem:
    managed = product.get("manage_stock") is True  # "parent": the variation's stock is its parent's
    quantity = product.get("stock_quantity")
    return StockItem(
        sku=str(product.get("sku") or "").strip(),
        item_id=item_id(product),
        managed=managed,
        quantity=int(quantity) if managed and quantity is not None else None,
    )


def list_items(client: WooClient, catalogue: Catalogue, skus: Sequence[str] | None) -> list[StockItem]:
    """Every SKU-carrying product and variation, or those with the given SKUs (one lookup per 40)."""
    fields = f"{FIELDS},stock_quantity"
    found: list[dict[str, Any]] = []
    if skus is not None:
        wanted = sorted({s for s in skus if s and "," not in s})
        for start in range(0, len(wanted), 40):
            chunk = wanted[start : start + 40]
            found += [
                p
                for p in client.pages("products", {"sku": ",".join(chunk), "_fields": fields})
                if p.get("sku") in chunk
            ]
    else:
        for product in client.pages("products", {"_fields": f"{fields},variations"}):
            found.append(product)
            if product.get("type") == "variable" or product.get("variations"):
                for variation in client.pages(f"products/{product['id']}/variations", {"_fields": fields}):
                    found.append({**variation, "parent_id": variation.get("parent_id") or product["id"]})
    for product in found:
        catalogue.remember(product)
    return [as_item(p) for p in found if str(p.get("sku") or "").strip() and p.get("type") != "variable"]


def write_stock(
    client: WooClient,
    catalogue: Catalogue,
    changes: Sequence[StockChange],
    *,
    limit: int = BATCH_LIMIT,
    on_saved: Callable[[dict[str, Any]], None] = lambda product: None,
) -> tuple[StockWrite, int]:
    """Set each SKU's quantity; returns what happened and the batch size the store accepted."""
    before = client.calls
    latest = {change.sku: change for change in changes}  # the last word per SKU wins
    lookup = catalogue.products_for(client, [s for s, c in latest.items() if not c.item_id])
    written: dict[str, int] = {}
    skipped: dict[str, str] = {}
    targets: dict[str, tuple[int, int]] = {}
    for sku, change in latest.items():
        if change.item_id:
            targets[sku] = split_item_id(change.item_id)
        elif sku in lookup and lookup[sku]["manage_stock"] == "parent":
            skipped[sku] = "not managed: the variation takes its stock from its parent product"
        elif sku in lookup:
            targets[sku] = (lookup[sku]["parent_id"], lookup[sku]["id"])
        else:
            skipped[sku] = "unknown SKU"
    stale = _stale(
        client, {s: targets[s] for s, c in latest.items() if s in targets and c.expected is not None}, latest
    )
    groups: dict[int, list[tuple[str, dict[str, Any]]]] = {}  # parent id (0: products) → items
    for sku, (parent, own) in targets.items():
        if sku not in stale:
            item = {"id": own, "manage_stock": True, "stock_quantity": max(0, int(latest[sku].quantity))}
            groups.setdefault(parent, []).append((sku, item))
    for parent, items in groups.items():
        path = f"products/{parent}/variations/batch" if parent else "products/batch"
        start = 0
        while start < len(items):
            chunk = items[start : start + limit]
            try:
                answer = client.post(path, {"update": [item for _, item in chunk]}, idempotent=True)
            except BatchTooLarge:
                if limit <= 1:
                    raise
                limit = max(1, limit // 2)
                continue
            _read_items(answer, chunk, catalogue, written, skipped, on_saved)
            start += len(chunk)
    return StockWrite(written=written, skipped=skipped, calls=client.calls - before, stale=stale), limit


def _stale(client: WooClient, targets: dict[str, tuple[int, int]], latest: dict[str, StockChange]) -> dict[str, int]:
    """SKUs whose quantity on the store is not the ``expected`` one, with the quantity it is."""
    by_parent: dict[int, dict[int, str]] = {}
    for sku, (parent, own) in targets.items():
        by_parent.setdefault(parent, {})[own] = sku
    stale: dict[str, int] = {}
    for parent, ids in by_parent.items():
        path = f"products/{parent}/variations" if parent else "products"
        for start in range(0, len(ids), 100):
            chunk = sorted(ids)[start : start + 100]
            for product in _read(client, path, chunk):
                sku = ids.get(int(product["id"]))
                current = product.get("stock_quantity")
                if sku and current is not None and int(current) != latest[sku].expected:
                    stale[sku] = int(current)
    return stale


def _read(client: WooClient, path: str, ids: Iterable[int]) -> Iterable[dict[str, Any]]:
    return client.pages(path, {"include": ",".join(str(i) for i in ids), "_fields": READ_FIELDS})


def _read_items(
    answer: Any,
    chunk: list[tuple[str, dict[str, Any]]],
    catalogue: Catalogue,
    written: dict[str, int],
    skipped: dict[str, str],
    on_saved: Callable[[dict[str, Any]], None],
) -> None:
    results = {int(r.get("id") or 0): r for r in (answer or {}).get("update") or [] if isinstance(r, dict)}
    for sku, item in chunk:
        result = results.get(item["id"])
        if result is None:
            skipped[sku] = "refused: the store's answer does not mention this item"
        elif "error" in result:
            error = result["error"] or {}
            skipped[sku] = f"refused: {error.get('code')}: {error.get('message')}"
            if error.get("code") in ("woocommerce_rest_product_invalid_id", "woocommerce_rest_invalid_product_id"):
                catalogue.forget(sku)  # the id we knew is gone: look it up afresh next time
        else:
            written[sku] = int(result.get("stock_quantity") or 0)
            on_saved(result)
