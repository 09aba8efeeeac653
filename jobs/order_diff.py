"""An order edited after push, against what the provider holds: the diff and what to do, as pure
functions of plain values (no database, no HTTP).

The provider holds what we sent (``Sent``: the address and the shippable lines), not the order row,
which always carries the shop's latest view. ``diff`` says what differs; ``plan`` picks, in order
of preference: apply it at the provider (when its API can change that kind of thing), cancel and
re-create under a new reference (while nothing has left the warehouse), or hold the edit for the
merchant with the reason. Nothing is ever sent a second time while the first is live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from integrations.model import Address, LineChange, Order, OrderChanges
from jobs import states
from jobs.decide import ESSENTIAL_ADDRESS_FIELDS

NOTHING = "nothing"  # the provider already has it (a repeat delivery, an unrelated change)
UPDATE = "update"  # the provider's API changes the order in place
RECREATE = "recreate"  # cancel the provider's order, then create it again under a new reference
CANCEL = "cancel"  # nothing is left to ship: cancel at the provider
HOLD = "hold"  # cannot be applied: the merchant is told why

# States in which the provider holds the order and an edit may still be applied.
EDITABLE_STATES = frozenset({states.PUSHED})
# States in which (some of) the order has left the warehouse: an edit is held.
SHIPPED_STATES = frozenset({states.PARTIALLY_SHIPPED, states.SHIPPED, states.DELIVERED})


@dataclass(frozen=True)
class SentLine:
    platform_line_id: str
    sku: str
    quantity: int
    name: str = ""


@dataclass(frozen=True)
class Sent:
    """What the provider holds for the order, under ``reference``."""

    reference: str
    ship_to: Address | None
    lines: tuple[SentLine, ...]


@dataclass(frozen=True)
class Plan:
    action: str
    reason: str


def sent_from(order: Order, reference: str) -> Sent:
    """The snapshot of what a create or update sends: the address and the shippable lines."""
    return Sent(
        reference=reference,
        ship_to=order.ship_to,
        lines=tuple(SentLine(li.platform_line_id, li.sku, li.quantity, li.name) for li in order.shippable_lines),
    )


def sent_to_json(sent: Sent) -> dict[str, Any]:
    return {
        "reference": sent.reference,
        "ship_to": asdict(sent.ship_to) if sent.ship_to else None,
        "lines": [asdict(line) for line in sent.lines],
    }


def sent_from_json(reference: str, ship_to: Mapping[str, Any] | None, lines: list[Mapping[str, Any]]) -> Sent:
    return Sent(
        reference=reference,
        ship_to=Address(**ship_to) if ship_to else None,
        lines=tuple(SentLine(**line) for line in lines),
    )


def diff(sent: Sent, now: Order) -> OrderChanges:
    """How ``now`` differs from what the provider holds; lines are matched by their platform id."""
    address = now.ship_to if now.ship_to != sent.ship_to and now.ship_to is not None else None
    before = {line.platform_line_id: line for line in sent.lines}
    after = {line.platform_line_id: line for line in now.shippable_lines}
    changes: list[LineChange] = []
    for line_id in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(line_id), after.get(line_id)
        if old is not None and new is not None and old.sku != new.sku:  # a swapped product: out and in
            changes.append(LineChange(line_id, old.sku, old.quantity, 0))
            changes.append(LineChange(line_id, new.sku, 0, new.quantity))
            continue
        was, now_qty = (old.quantity if old else 0), (new.quantity if new else 0)
        if was != now_qty:
            changes.append(LineChange(line_id, (new or old).sku, was, now_qty))  # type: ignore[union-attr]
    return OrderChanges(address=address, lines=tuple(changes))


def describe(changes: OrderChanges) -> str:
    """The changes as the timeline says them (no personal data beyond the town and country)."""
    parts: list[str] = []
    if changes.address is not None:
        where = ", ".join(p for p in (changes.address.city, changes.address.country_code) if p)
        parts.append(f"shipping address changed (now {where})" if where else "shipping address changed")
    for line in changes.lines:
        if line.before == 0:
            parts.append(f"line {line.sku} added ({line.after})")
        elif line.after == 0:
            parts.append(f"line {line.sku} removed (was {line.before})")
        else:
            parts.append(f"line {line.sku} quantity {line.before} → {line.after}")
    return "; ".join(parts)


def plan(changes: OrderChanges, now: Order, state: str, provider: str, editable: frozenset[str]) -> Plan:
    """What to do with ``changes`` to an order in ``state`` at ``provider``, whose API can edit
    the kinds in ``editable`` (``address``, ``lines``)."""
    if changes.empty:
        return Plan(NOTHING, f"{provider} already has this version of the order")
    what = describe(changes)
    if state in SHIPPED_STATES:
        return Plan(HOLD, f"changed after {provider} shipped it ({what}): not applied, check with the customer")
    if state not in EDITABLE_STATES:
        return Plan(NOTHING, f"order is {state}: the change is not sent")
    if changes.address is not None:
        blank = [name for name in ESSENTIAL_ADDRESS_FIELDS if not str(getattr(changes.address, name, "")).strip()]
        if blank:
            return Plan(HOLD, f"the new shipping address lacks {', '.join(blank)}: not sent to {provider}")
    if not now.shippable_lines:
        return Plan(CANCEL, f"every line to ship was removed ({what}): cancelling at {provider}")
    if changes.kinds <= editable:
        return Plan(UPDATE, f"{what}: updating the order at {provider}")
    return Plan(RECREATE, f"{what}: {provider} cannot change this in place, so it is cancelled and sent again")
