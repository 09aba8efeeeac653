"""The fake Shopify's inventory: items with SKUs, levels per location, and ``inventorySetQuantities``.

Rules as Shopify documents them (2026-10): ``name`` is ``available`` or ``on_hand``; ``reason`` one
of the documented reasons; ``referenceDocumentUri`` a URI (a GID needs app, type and id); at most
250 quantities (any longer input array is refused before anything runs); every quantity must
carry ``changeFromQuantity`` (null allowed, omitted refused); a mismatch is
``CHANGE_FROM_QUANTITY_STALE`` on that quantity's field path and nothing in the request is
applied; the ``@idempotent(key:)`` directive is required: the same key with the same input
answers the first outcome without applying anything again (a failed first attempt answers
``IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED``), with another input ``IDEMPOTENCY_KEY_PARAMETER_MISMATCH``.

``sell`` is a customer buying on the shop (available goes down, committed up); a callable given to
``before_next_write`` runs inside the next ``inventorySetQuantities``, before it reads anything:
a sale landing between the sync's read and its write.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, value_from_ast_untyped

MAX_INPUT = 250
REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
TERM = re.compile(r'(\w+):(?:"((?:[^"\\]|\\.)*)"|(\S+))')


@dataclass
class FakeItem:
    id: str
    sku: str
    tracked: bool = True
    levels: dict[str, dict[str, int]] = field(default_factory=dict)  # location → {available, committed}

    @property
    def legacy_id(self) -> str:
        return self.id.rsplit("/", 1)[1]


def _error(code: str | None, message: str, *path: str) -> dict[str, Any]:
    return {"field": list(path) or None, "message": message, "code": code}


class FakeInventory:
    """Inventory items of the fake shop. Resolvers run under the server's lock; hooks take ours."""

    def __init__(self) -> None:
        self.items: dict[str, FakeItem] = {}
        self.groups: list[dict[str, Any]] = []  # applied adjustment groups (reason, uri, changes)
        self.writes = 0  # inventorySetQuantities requests that reached the resolver
        self._keys: dict[str, tuple[str, dict[str, Any]]] = {}
        self._before_write: list[Callable[[FakeInventory], None]] = []
        self._numbers = itertools.count(7_000_000_001)
        self._lock = threading.RLock()

    # --- test hooks -------------------------------------------------------------------------
    def add_item(self, sku: str, location: str | None = None, available: int = 0, *, tracked: bool = True) -> FakeItem:
        """An item (one variant's) with ``available`` units at ``location`` (None: stocked nowhere)."""
        with self._lock:
            item = FakeItem(f"gid://shopify/InventoryItem/{next(self._numbers)}", sku, tracked)
            if location:
                item.levels[location] = {"available": available, "committed": 0}
            self.items[item.id] = item
            return item

    def sell(self, sku: str, units: int, location: str) -> None:
        """A customer buys ``units`` of the (single) item with this SKU at ``location``."""
        with self._lock:
            level = self.item(sku).levels[location]
            level["available"] -= units
            level["committed"] += units

    def available(self, sku: str, location: str) -> int:
        with self._lock:
            return self.item(sku).levels[location]["available"]

    def item(self, sku: str) -> FakeItem:
        (found,) = [i for i in self.items.values() if i.sku == sku]
        return found

    def before_next_write(self, action: Callable[[FakeInventory], None]) -> None:
        with self._lock:
            self._before_write.append(action)

    # --- resolvers --------------------------------------------------------------------------
    def root(self) -> dict[str, Any]:
        return {
            "inventoryItems": lambda _info, first=None, after=None, query=None, **_: self._page(first, after, query),
            "inventoryItem": lambda _info, id: self._view(self.items.get(id)),
            "nodes": lambda _info, ids: [self._view(self.items.get(i)) for i in ids],
            "inventorySetQuantities": self._set_quantities,
        }

    def _page(self, first: int | None, after: str | None, query: str | None) -> dict[str, Any]:
        if first is None or not 0 < first <= MAX_INPUT:
            raise GraphQLError("first must be between 1 and 250")
        with self._lock:
            found = [i for i in self.items.values() if _matches(i, query)]
        start = int(after) if after else 0
        end = start + first
        nodes = [self._view(i) for i in found[start:end]]
        return {
            "nodes": nodes,
            "edges": [{"node": node, "cursor": str(start + n + 1)} for n, node in enumerate(nodes)],
            "pageInfo": {"hasNextPage": end < len(found), "endCursor": str(min(end, len(found)))},
        }

    def _view(self, item: FakeItem | None) -> dict[str, Any] | None:
        if item is None:
            return None

        def level(_info: Any, locationId: str, includeInactive: bool = False) -> dict[str, Any] | None:
            quantities = item.levels.get(locationId)
            if quantities is None:
                return None
            return {
                "id": f"gid://shopify/InventoryLevel/{locationId.rsplit('/', 1)[1]}?inventory_item_id={item.legacy_id}",
                "location": {"id": locationId},
                "quantities": lambda _i, names: [{"name": n, "quantity": _quantity(quantities, n)} for n in names],
            }

        return {
            "__typename": "InventoryItem",
            "id": item.id,
            "sku": item.sku,
            "tracked": item.tracked,
            "legacyResourceId": item.legacy_id,
            "inventoryLevel": level,
        }

    def _set_quantities(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        key = _idempotency_key(info)
        if key is None:
            raise GraphQLError(
                "inventorySetQuantities requires an idempotency key: use the @idempotent(key:) directive.",
                extensions={"code": "BAD_REQUEST"},
            )
        if len(input["quantities"]) > MAX_INPUT:
            raise GraphQLError(
                f"The input array size of {len(input['quantities'])} is greater than the maximum allowed of 250.",
                extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"},
            )
        with self._lock:
            self.writes += 1
            fingerprint = json.dumps(input, sort_keys=True)
            if key in self._keys:
                first_input, outcome = self._keys[key]
                if first_input != fingerprint:
                    message = "The same idempotency key cannot be used with different operation parameters."
                    return self._refusal([_error("IDEMPOTENCY_KEY_PARAMETER_MISMATCH", message)])
                if outcome["userErrors"]:
                    message = "A previous request with this idempotency key failed. Retry with a new idempotency key."
                    return self._refusal([_error("IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED", message)])
                return outcome
            actions, self._before_write = self._before_write, []
            for action in actions:
                action(self)
            outcome = self._apply(input)
            self._keys[key] = (fingerprint, outcome)
            return outcome

    def _apply(self, data: dict[str, Any]) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        if data["name"] not in ("available", "on_hand"):
            errors.append(
                _error("INVALID_NAME", "The quantity name must be either 'available' or 'on_hand'.", "input", "name")
            )
        if data["reason"] not in REASONS:
            errors.append(_error("INVALID_REASON", "The specified reason is invalid.", "input", "reason"))
        if not _valid_uri(data.get("referenceDocumentUri")):
            errors.append(
                _error(
                    "INVALID_REFERENCE_DOCUMENT",
                    "The specified reference document is invalid.",
                    "input",
                    "referenceDocumentUri",
                )
            )
        seen: set[tuple[str, str]] = set()
        plan: list[tuple[FakeItem, str, int]] = []
        for index, quantity in enumerate(data["quantities"]):
            path = ("input", "quantities", str(index))
            item = self.items.get(quantity["inventoryItemId"])
            location = quantity["locationId"]
            if "changeFromQuantity" not in quantity:
                errors.append(_error(None, "changeFromQuantity must be provided (null to skip the check).", *path))
                continue
            if item is None:
                errors.append(
                    _error("INVALID_INVENTORY_ITEM", "The specified inventory item could not be found.", *path)
                )
                continue
            if (item.id, location) in seen:
                message = "The combination of inventoryItemId and locationId must be unique."
                errors.append(_error("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", message, *path))
                continue
            seen.add((item.id, location))
            level = item.levels.get(location)
            if level is None:
                errors.append(_error("INVALID_LOCATION", "The specified location could not be found.", *path))
                continue
            if quantity["quantity"] < 0:
                errors.append(_error("INVALID_QUANTITY_NEGATIVE", "The quantity can't be negative.", *path))
                continue
            expected = quantity["changeFromQuantity"]
            if expected is not None and expected != _quantity(level, data["name"]):
                message = "The changeFromQuantity value does not match persisted value."
                errors.append(_error("CHANGE_FROM_QUANTITY_STALE", message, *path, "changeFromQuantity"))
                continue
            plan.append((item, location, quantity["quantity"]))
        if errors:
            return self._refusal(errors)
        changes = []
        for item, location, value in plan:
            level = item.levels[location]
            delta = value - _quantity(level, data["name"])
            level["available"] += delta  # on_hand moves with available; committed stays
            changes.append({"item": item.id, "location": location, "delta": delta, "after": value})
        group = {
            "id": f"gid://shopify/InventoryAdjustmentGroup/{next(self._numbers)}",
            "reason": data["reason"],
            "referenceDocumentUri": data.get("referenceDocumentUri"),
            "changes": changes,
        }
        self.groups.append(group)
        return {"inventoryAdjustmentGroup": {"id": group["id"], "reason": group["reason"]}, "userErrors": []}

    @staticmethod
    def _refusal(errors: list[dict[str, Any]]) -> dict[str, Any]:
        return {"inventoryAdjustmentGroup": None, "userErrors": errors}


def _quantity(level: dict[str, int], name: str) -> int:
    if name == "on_hand":
        return level["available"] + level["committed"]
    return level.get(name, 0)


def _idempotency_key(info: GraphQLResolveInfo) -> str | None:
    for directive in info.field_nodes[0].directives or ():
        if directive.name.value == "idempotent":
            for argument in directive.arguments:
                if argument.name.value == "key":
                    variables = getattr(info.variable_values, "coerced", info.variable_values)
                    value = value_from_ast_untyped(argument.value, variables)
                    return str(value) if value and str(value).strip() else None
    return None


def _matches(item: FakeItem, query: str | None) -> bool:
    """Shopify search syntax, the part Relais uses: ``sku:X`` / ``id:N`` terms joined by OR."""
    if not query:
        return True
    for name, quoted, bare in TERM.findall(query):
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted else bare
        if name == "sku" and item.sku.lower() == value.lower():  # search is case-insensitive
            return True
        if name == "id" and item.legacy_id == value:
            return True
    return False


def _valid_uri(uri: str | None) -> bool:
    if uri is None:
        return True
    scheme, sep, rest = uri.partition("://")
    if not (scheme and sep and rest):
        return False
    if scheme == "gid":
        parts = rest.split("/")
        return len(parts) == 3 and all(parts)
    return True
