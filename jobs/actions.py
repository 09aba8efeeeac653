"""What the merchant can do to an order from the settings page: retry, release a hold, cancel at
the provider. Platform-neutral; each one is a state transition recorded on the order's timeline
(and in the audit log), committed before its job is enqueued, like every step of the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs import decide as decisions
from jobs import states
from jobs.orders import FollowUp, enqueue_follow_ups
from jobs.runtime import Runtime
from store import audit
from store import orders as order_store
from store.db import transaction
from store.models import Shop
from store.shops import has_provider

ACTIONS = ("retry", "release", "cancel")


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str


def perform(runtime: Runtime, shop_id: int, order_id: int, action: str, actor: str) -> ActionResult:
    """Run ``action`` on one of the shop's orders; refuses (ok=False, saying why) when the order is
    not in a state the action applies to. Repeating an action that took effect changes nothing."""
    if action not in ACTIONS:
        return ActionResult(False, f"unknown action {action!r}")
    follow_ups: list[FollowUp] = []
    with transaction(runtime.sessions) as session:
        row = order_store.get_for_update(session, order_id)
        shop = session.get(Shop, shop_id)
        if row is None or shop is None or row.shop_id != shop_id:
            return ActionResult(False, "no such order in this shop")
        if shop.status != "active":
            return ActionResult(False, f"the shop is {shop.status}")
        name = row.name or row.platform_order_id
        if action == "retry":
            if row.state != states.FAILED:
                return ActionResult(False, f"{name} is {row.state}; only failed orders are retried")
            was_cancel = bool(row.attempts) and row.attempts[-1].action == "cancel"
            row.failure_reason = None
            if was_cancel:  # the failure was the cancel: ask the provider again
                order_store.transition(row, states.CANCEL_REQUESTED, f"cancel retried by {actor}")
                follow_ups.append(FollowUp("cancel", row.id, row.generation))
            else:
                order_store.transition(row, states.READY, f"retried by {actor}")
                follow_ups.append(FollowUp("push", row.id, row.generation))
            message = f"{name} will be sent again"
        elif action == "release":
            recorded = decisions.Recorded(state=row.state, platform_updated_at=None)
            decision = decisions.release(
                order_store.to_model(row), recorded, shop.settings or {}, has_provider=has_provider(shop)
            )
            if decision.action in (decisions.UPDATE, decisions.HOLD):
                return ActionResult(False, f"{name}: {decision.reason}")
            if decision.state:
                order_store.transition(row, decision.state, f"{decision.reason} ({actor})")
            if decision.action == decisions.PUSH:
                follow_ups.append(FollowUp("push", row.id, row.generation))
            message = f"{name}: {decision.reason}"
        else:
            if row.state not in states.AT_PROVIDER:
                return ActionResult(False, f"{name} is {row.state}; only orders at the provider can be cancelled there")
            order_store.transition(row, states.CANCEL_REQUESTED, f"cancel at the provider requested by {actor}")
            follow_ups.append(FollowUp("cancel", row.id, row.generation))
            message = f"{name}: cancel sent to the provider"
        audit.record(session, shop, f"order_{action}", message, {"order_id": row.id}, actor)
    enqueue_follow_ups(runtime, follow_ups)
    return ActionResult(True, message)
