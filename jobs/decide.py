"""What to do with an order delivery: a pure function of the order, what we recorded, and the
shop's rules. No database, no HTTP, no clock; tested with plain values.

The decision follows the order's state, never the topic that carried it: ``orders/create``,
``orders/paid`` and ``orders/updated`` for the same paid order all lead to one push.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integrations.model import Order
from jobs import states

PUSH = "push"  # record, mark ready, push to the provider
CANCEL_AT_PROVIDER = "cancel_at_provider"  # it is (or may be) there: ask the provider to cancel
CANCEL_LOCALLY = "cancel_locally"  # never pushed: mark cancelled, push nothing
WAIT = "wait"  # record; not ready yet (unpaid)
HOLD = "hold"  # record; needs the merchant (e.g. no address)
NOTHING_TO_SHIP = "nothing_to_ship"  # record; no line needs shipping
UPDATE = "update"  # record the newer data; the pipeline state stays
STALE = "stale"  # older than what we have: ignore entirely

# The hold reason of an order whose shop has no provider yet (new installs start so). Orders held
# with it are released by the shop's first saved and tested provider (``provider_saved``).
WAITING_FOR_PROVIDER = "waiting for a provider"
# Shopify fulfilment-service mode: an order goes to the provider when Shopify asks our location to
# fulfil it (``jobs.fulfilment_requests``), never on the order webhook alone.
WAITING_FOR_REQUEST = "waiting for Shopify's fulfilment request to our location"


@dataclass(frozen=True)
class Recorded:
    """What Relais holds for the order already (None when first seen)."""

    state: str
    platform_updated_at: datetime | None


@dataclass(frozen=True)
class Decision:
    action: str
    state: str | None  # the state to move to, None to keep the current one
    reason: str


def decide(order: Order, recorded: Recorded | None, rules: Mapping[str, Any], has_provider: bool = True) -> Decision:
    """Decide from state. ``rules`` is the shop's settings (``push_on``: "paid" or "created");
    ``has_provider``: whether the shop has a provider to push to (else a pushable order is held
    "waiting for a provider", after the shop's own hold rules, which need the merchant first)."""
    if recorded and recorded.platform_updated_at and order.updated_at < recorded.platform_updated_at:
        return Decision(STALE, None, f"update of {order.updated_at.isoformat()} is older than the one applied")
    current = recorded.state if recorded else None

    if order.cancelled:
        if current in states.CANCEL_STATES:
            return Decision(UPDATE, None, "already cancelled or being cancelled")
        if current in states.FULLY_SHIPPED:
            return Decision(UPDATE, states.CANCEL_TOO_LATE, "cancelled on the shop after it shipped")
        if current in states.AT_PROVIDER:
            return Decision(CANCEL_AT_PROVIDER, states.CANCEL_REQUESTED, "cancelled on the shop after push")
        return Decision(CANCEL_LOCALLY, states.CANCELLED, "cancelled on the shop before push")

    if current is not None and current not in (states.RECEIVED, states.HELD, states.NO_SHIPPING):
        # ready, pushing, at the provider, shipped, failed, cancelled: new data changes nothing here.
        return Decision(UPDATE, None, f"order already {current}")

    if not order.shippable_lines:
        return Decision(NOTHING_TO_SHIP, states.NO_SHIPPING, "no line needs shipping")
    push_on = rules.get("push_on", "paid")
    if push_on == "paid" and not order.paid:
        return Decision(WAIT, states.RECEIVED, "waiting for payment")
    reason = hold_reason(order, rules)
    if reason:
        return Decision(HOLD, states.HELD, reason)
    if not has_provider:
        return Decision(HOLD, states.HELD, WAITING_FOR_PROVIDER)
    if rules.get("fulfilment_mode") == "service":
        return Decision(WAIT, states.RECEIVED, WAITING_FOR_REQUEST)
    return Decision(PUSH, states.READY, "paid" if order.paid else "created (shop pushes on creation)")


def is_waiting_for_provider(held_reason: str) -> bool:
    """Whether a hold is the no-provider one (``held_reason``: why the order last went to held)."""
    return held_reason.startswith(WAITING_FOR_PROVIDER)


def provider_saved(order: Order, recorded: Recorded, held_reason: str, rules: Mapping[str, Any]) -> Decision:
    """The shop now has a tested provider: an order held only for the lack of one is decided again
    as if it had just arrived (the shop's hold rules of today apply; a cancelled one is not sent).
    Any other order is left alone (``UPDATE``): a merchant's hold is released by the merchant."""
    if recorded.state != states.HELD or not is_waiting_for_provider(held_reason):
        return Decision(UPDATE, None, f"order is {recorded.state}, not waiting for a provider")
    decision = decide(order, Recorded(states.HELD, None), rules, has_provider=True)
    if decision.action == PUSH:
        return Decision(PUSH, states.READY, "a provider is saved and tested: sending")
    return decision


# Without these no parcel can leave, whatever the shop's rules say.
ESSENTIAL_ADDRESS_FIELDS = ("address1", "city", "country_code")


def hold_reason(order: Order, rules: Mapping[str, Any]) -> str:
    """Why the shop's hold rules keep this order for the merchant ("" when none applies)."""
    if order.ship_to is None:
        return "shipping address is missing"
    required = dict.fromkeys([*ESSENTIAL_ADDRESS_FIELDS, *rules.get("required_address_fields", ())])
    blank = [name for name in required if not str(getattr(order.ship_to, name, "") or "").strip()]
    if blank:
        return f"shipping address is incomplete: no {', '.join(blank)}"
    hold_tags = {str(t).strip().lower() for t in rules.get("hold_tags", ()) if str(t).strip()}
    tagged = sorted(t for t in order.tags if t.strip().lower() in hold_tags)
    if tagged:
        return f"tagged {', '.join(tagged)} (a hold tag)"
    if rules.get("hold_high_risk") and order.high_risk:
        return "high fraud risk"
    return ""


def release(order: Order, recorded: Recorded, rules: Mapping[str, Any], has_provider: bool = True) -> Decision:
    """The merchant releases a held order: the shop's hold rules no longer apply to it, but an
    order that cannot ship (cancelled, nothing to ship, no address at all, no provider to ship
    it) is still not pushed."""
    if recorded.state != states.HELD:
        return Decision(UPDATE, None, f"order is {recorded.state}, not held")
    if order.cancelled:
        return Decision(CANCEL_LOCALLY, states.CANCELLED, "cancelled on the shop before push")
    if not order.shippable_lines:
        return Decision(NOTHING_TO_SHIP, states.NO_SHIPPING, "no line needs shipping")
    if rules.get("push_on", "paid") == "paid" and not order.paid:
        return Decision(WAIT, states.RECEIVED, "released; waiting for payment")
    blank = [name for name in ESSENTIAL_ADDRESS_FIELDS if not getattr(order.ship_to, name, "")]
    if order.ship_to is None or blank:
        return Decision(HOLD, None, "cannot release: the shipping address lacks " + ", ".join(blank or ["everything"]))
    if not has_provider:
        return Decision(HOLD, None, f"cannot release: {WAITING_FOR_PROVIDER} (save and test one first)")
    if rules.get("fulfilment_mode") == "service":
        return Decision(WAIT, states.RECEIVED, f"released; {WAITING_FOR_REQUEST}")
    return Decision(PUSH, states.READY, "hold released by the merchant")
