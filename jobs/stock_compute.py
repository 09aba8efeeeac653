"""What the shop should show, and what to write: the stock sync's pure core (no database, no HTTP).

Per SKU and shop location: the provider's fulfillable units (summed over the provider locations
mapped to that shop location), minus the units of orders Relais holds that the provider has not
counted yet, minus the shop's safety buffer, floored at 0. A SKU is written only where that
differs from what we believe the shop shows; SKUs that cannot be written are reported with why,
never guessed.

What we believe the shop shows is our last write (or last read) minus the units of orders Relais
has received since: Shopify took those off ``available`` when they were placed. Every write
carries that belief as a compare-and-set, so a change it does not explain (a sale whose order
has not reached Relais yet) is refused by the shop; ``after_refusal`` then keeps those unseen
units subtracted, so a race never shows stock that was already sold.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from integrations.model import InventoryLevel

# Reasons a SKU is not written; the report groups by them.
UNKNOWN = "unknown SKU: no item of the shop has it"
DUPLICATE = "duplicate SKU: {n} items of the shop have it"
NOT_MANAGED = "not managed: the shop does not track this item's stock"
NOT_STOCKED = "not stocked at location {location}"
UNMAPPED = "provider location {location} is not mapped to a shop location"


@dataclass(frozen=True)
class MapEntry:
    """One item of the shop carrying a SKU: its id, whether tracked, where it is stocked."""

    item_id: str
    managed: bool = True
    stocked_at: frozenset[str] = frozenset()  # shop locations with a stock level for the item


@dataclass(frozen=True)
class Buffers:
    """Units held back from what the shop shows: one figure per shop, overridden per SKU."""

    default: int = 0
    per_sku: Mapping[str, int] = field(default_factory=dict)

    def of(self, sku: str) -> int:
        return max(0, int(self.per_sku.get(sku, self.default)))


@dataclass(frozen=True)
class PlannedChange:
    location: str
    sku: str
    item_id: str
    quantity: int
    expected: int | None  # what we believe the shop shows now (compare-and-set)


@dataclass(frozen=True)
class Plan:
    changes: tuple[PlannedChange, ...]
    skipped: dict[str, str]  # sku → reason
    targets: dict[str, dict[str, int]]  # shop location → sku → what the shop should show
    unchanged: int  # SKU-locations already showing their target


def locate(levels: Iterable[InventoryLevel], mapping: Mapping[str, str], default: str) -> dict[str, dict[str, int]]:
    """Provider levels as fulfillable units per shop location and SKU.

    ``mapping`` sends provider locations to shop locations; when it is empty every provider
    location counts towards ``default`` (the shop's one location for the provider). A provider
    location missing from a non-empty mapping is left out (its SKUs are reported by ``plan``).
    """
    placed: dict[str, dict[str, int]] = {}
    for level in levels:
        location = mapping.get(level.location, "") if mapping else default
        if not location or not level.sku:
            continue
        per_sku = placed.setdefault(location, {})
        per_sku[level.sku] = per_sku.get(level.sku, 0) + max(0, int(level.fulfillable))
    return placed


def target(fulfillable: int, reserved: int, buffer: int) -> int:
    """What the shop should show: never below zero."""
    return max(0, fulfillable - reserved - buffer)


def plan(
    levels: Sequence[InventoryLevel],
    mapping: Mapping[str, str],
    default_location: str,
    reserved: Mapping[str, int],
    buffers: Buffers,
    catalogue: Mapping[str, Sequence[MapEntry]],
    shown: Mapping[tuple[str, str], int],
    written_before: Iterable[tuple[str, str]] = (),
) -> Plan:
    """The changes that make the shop show its targets, and every SKU left alone with why.

    ``reserved``: units per SKU of orders Relais holds that the provider has not counted yet; they
    are taken off at every shop location (Relais does not know which one will ship them, and
    showing too little is the safe side). ``catalogue``: the shop's items by SKU. ``shown``: what we
    believe the shop shows, by (location, SKU); a SKU missing there is written with no
    compare-and-set (``expected`` None). ``written_before``: (location, SKU) Relais has written;
    one the provider no longer reports has no fulfillable stock and goes to 0 (providers leave
    sold-out items out of their lists).
    """
    placed = locate(levels, mapping, default_location)
    for location, sku in written_before:
        placed.setdefault(location, {}).setdefault(sku, 0)
    reported = {sku for skus in placed.values() for sku in skus}
    skipped: dict[str, str] = {
        level.sku: UNMAPPED.format(location=level.location)
        for level in levels
        if mapping and level.location not in mapping and level.sku not in reported
    }
    changes: list[PlannedChange] = []
    targets: dict[str, dict[str, int]] = {}
    unchanged = 0
    for location in sorted(placed):
        for sku, fulfillable in sorted(placed[location].items()):
            entries = catalogue.get(sku, ())
            reason = _unwritable(entries, location)
            if reason:
                skipped[sku] = reason
                continue
            quantity = target(fulfillable, int(reserved.get(sku, 0)), buffers.of(sku))
            targets.setdefault(location, {})[sku] = quantity
            believed = shown.get((location, sku))
            if believed == quantity:
                unchanged += 1
                continue
            changes.append(PlannedChange(location, sku, entries[0].item_id, quantity, believed))
    return Plan(tuple(changes), skipped, targets, unchanged)


def _unwritable(entries: Sequence[MapEntry], location: str) -> str:
    if not entries:
        return UNKNOWN
    if len(entries) > 1:
        return DUPLICATE.format(n=len(entries))
    if not entries[0].managed:
        return NOT_MANAGED
    if location not in entries[0].stocked_at:
        return NOT_STOCKED.format(location=location)
    return ""


def believed(last: int, received_since: int) -> int:
    """What the shop shows now as far as we know: our last write or read, less the units of orders
    Relais received since (the shop took them off when they were placed)."""
    return last - max(0, received_since)


def after_refusal(wanted: int, expected: int | None, current: int) -> int:
    """What to write after the shop refused a compare-and-set: it holds ``current``, not ``expected``.

    Units the shop lost beyond what we expected were sold through orders Relais has not seen
    yet; they stay subtracted until those orders arrive (the next sync then shows the rest).
    Units the shop gained (a merchant's edit, a restock on cancel) change nothing: the provider's
    count is the truth.
    """
    unseen = max(0, expected - current) if expected is not None else 0
    return max(0, wanted - unseen)


def sku_batches(levels: Iterable[InventoryLevel], size: int) -> Iterator[list[InventoryLevel]]:
    """The provider's levels in batches of about ``size``, a SKU's adjacent levels never split.

    A SKU's levels at several centres are summed per shop location (``locate``), so one SKU must
    be planned from all of them at once. Providers list a SKU's centres together; a SKU that
    comes back after its batch was planned is the caller's to refuse (``seen``)."""
    batch: list[InventoryLevel] = []
    for level in levels:
        if len(batch) >= size and level.sku != batch[-1].sku:
            yield batch
            batch = []
        batch.append(level)
    if batch:
        yield batch
