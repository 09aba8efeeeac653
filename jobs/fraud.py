"""The fraud hold that acts: an order is screened against the platform's risk before it is pushed.

Shopify's order webhook carries no reliable risk, so when a shop's ``hold_high_risk`` rule is on
the push first reads the order's risk assessments (``Platform.order_risk``; WooCommerce has none
and is never asked). The rule off means no call at all.

- High (an assessment HIGH, or Shopify recommends cancelling): the order is held with the reason,
  on its timeline and in the merchant's "needs attention" list; it never reaches the provider.
- Pending (an assessment still running, or none yet): the order stays ``ready`` and waits, at
  most the shop's ``risk_wait_minutes`` (10 by default). A re-check is scheduled through RQ (no
  worker sleeps), and an ``orders/risk_assessment_changed`` delivery re-checks at once.
- After the bound the order is sent, with a timeline note saying it went without an assessment.
  Decided so because the rule is "hold orders with a *high* risk": a shop whose orders never get
  an assessment (no Shopify Payments, no fraud app) must not have every order held; a slow
  assessment that later says HIGH is put on the timeline of the (already sent) order.
- Low, medium or none: sent, the level noted on the timeline.

An order the merchant released from a fraud hold is not screened again. Every step is
idempotent: the outcome is read from the order's own timeline (this generation's notes).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from rq import Retry
from sqlalchemy.orm import Session

from integrations.errors import AuthError, InvalidRequestError, NotFoundError, RetryableError
from integrations.locations import RiskAssessment
from jobs import states
from jobs.parties import platform_for
from jobs.queues import enqueue_once, job_is_live, next_retry
from jobs.runtime import Runtime, get_runtime
from store import orders as order_store
from store.db import transaction
from store.models import Order, OrderTransition, Shop, WebhookEvent, utcnow

log = logging.getLogger(__name__)

DEFAULT_WAIT_MINUTES = 10
RECHECK_SECONDS = 120  # between re-checks while waiting (the webhook usually comes first)
HIGH_RISK = "high fraud risk"
UNCHECKED = "fraud risk could not be checked"
WAITING = "waiting for the fraud risk assessment"
ASSESSED = "fraud risk assessed"
NOT_ASSESSED = "no fraud risk assessment"
MERCHANT_RELEASES = ("hold released by the merchant", "released; waiting for payment")  # jobs.decide.release


def screen(runtime: Runtime, order_id: int, *, force: bool = False) -> Retry | str | None:
    """None when the order may be pushed now; otherwise what happened to it (held, waiting) or
    the RQ ``Retry`` to return when the platform could not be reached. ``force``: ask the platform
    even though a re-check is already scheduled (the re-check itself, a risk delivery)."""
    with runtime.sessions() as session:
        row = session.get(Order, order_id)
        shop = session.get(Shop, row.shop_id) if row is not None else None
        if not applies(row, shop):
            return None  # not ready, or the rule is off: no risk call at all
        window = _this_round(row)
        if any(t.reason.startswith((ASSESSED, NOT_ASSESSED)) for t in window) or _released_from_fraud_hold(row):
            return None
        waiting = next((t for t in window if t.reason.startswith(WAITING)), None)
        if waiting is not None and not force and job_is_live(runtime, _recheck_id(row)):
            return WAITING  # a re-check is scheduled: no call every time the sweep looks
        platform = platform_for(runtime, shop)
        platform_order_id, generation = row.platform_order_id, row.generation
        bound = timedelta(minutes=float((shop.settings or {}).get("risk_wait_minutes", DEFAULT_WAIT_MINUTES)))
    try:
        risk = platform.order_risk(platform_order_id)
    except RetryableError as exc:
        retry = next_retry(runtime, exc.retry_after)
        if retry is not None:
            log.info("order %s: fraud risk not readable yet (%s); retrying", order_id, exc)
            return retry
        return _hold(runtime, order_id, f"{UNCHECKED}: {exc}")
    except (AuthError, NotFoundError, InvalidRequestError) as exc:
        return _hold(runtime, order_id, f"{UNCHECKED}: {exc}")
    if risk is None:
        return None  # this platform assesses no risk
    return _apply(runtime, order_id, generation, risk, bound)


def applies(row: Order | None, shop: Shop | None) -> bool:
    """Whether ``screen`` has anything to do for the order: it is ready and its shop's rule is on.
    When not, ``screen`` returns None without a call, so a caller holding the rows (the push job,
    under its lock) need not run it: one read of the order and its shop the fewer per push."""
    if row is None or shop is None or row.state != states.READY:
        return False
    return bool((shop.settings or {}).get("hold_high_risk"))


def _apply(runtime: Runtime, order_id: int, generation: int, risk: RiskAssessment, bound: timedelta) -> str | None:
    with transaction(runtime.sessions) as session:
        row = order_store.get_for_update(session, order_id)
        if row is None or row.state != states.READY or row.generation != generation:
            return f"order is {row.state if row else 'gone'}"
        if risk.high:
            facts = f": {'; '.join(risk.facts[:3])}" if risk.facts else ""
            order_store.transition(row, states.HELD, f"{HIGH_RISK} (assessed by the shop){facts}")
            return "held"
        if not risk.pending:
            order_store.note(row, f"{ASSESSED}: {risk.level}")
            return None
        now = utcnow()
        waiting = next((t for t in _this_round(row) if t.reason.startswith(WAITING)), None)
        since = order_store.as_utc(waiting.at) if waiting is not None else now
        if waiting is None:
            minutes = int(bound.total_seconds() // 60)
            order_store.note(row, f"{WAITING} (at most {minutes} min before it is sent without one)")
        if now - since >= bound:
            order_store.note(row, f"{NOT_ASSESSED} after {int(bound.total_seconds() // 60)} min: sent without one")
            return None
        recheck_id = _recheck_id(row)
    delay = min(RECHECK_SECONDS, max(1.0, (since + bound - now).total_seconds()))
    if not job_is_live(runtime, recheck_id):
        runtime.queue("orders").enqueue_in(timedelta(seconds=delay), "jobs.fraud.recheck", order_id, job_id=recheck_id)
    return WAITING


def recheck(order_id: int) -> Retry | str:
    """The RQ job: read the risk again (scheduled while waiting, or on a risk delivery) and send
    the order when it is clear. Idempotent: the push job is enqueued under its usual id."""
    from jobs.orders import FollowUp, enqueue_follow_ups

    runtime = get_runtime()
    outcome = screen(runtime, order_id, force=True)
    if outcome is not None:
        return outcome
    with runtime.sessions() as session:
        row = session.get(Order, order_id)
        if row is None or row.state != states.READY:
            return f"order is {row.state if row else 'gone'}"
        follow_up = FollowUp("push", row.id, row.generation)
    enqueue_follow_ups(runtime, [follow_up])
    return "cleared: push queued"


def handle_event(runtime: Runtime, session: Session, shop: Shop, event: WebhookEvent) -> str:
    """An ``orders/risk_assessment_changed`` delivery: a waiting order is re-checked at once; an
    order already sent gets a timeline note when the new assessment is high. Raises ``ValueError``
    on a payload without an order id."""
    payload = json.loads(event.body)
    order_ref = (
        str(payload.get("order_id") or payload.get("admin_graphql_api_order_id") or "")
        if isinstance(payload, dict)
        else ""
    )
    if not order_ref:
        raise ValueError("risk assessment payload names no order_id")
    row = order_store.find(session, shop.id, order_ref.rsplit("/", 1)[-1])
    if row is None:
        return "risk assessment for an order Relais has not seen (it is screened when it comes)"
    level = str(payload.get("risk_level") or "").lower()
    if row.state == states.READY and (shop.settings or {}).get("hold_high_risk"):
        enqueue_once(
            runtime, "orders", "jobs.fraud.recheck", row.id, job_id=f"risk-{row.id}-{row.generation}-e{event.id}"
        )
        return "risk assessment: re-check queued"
    if level == "high" and row.state in states.AT_PROVIDER:
        order_store.note(
            row, f"{HIGH_RISK} assessed after the order was sent: cancel it on the shop to cancel it at the provider"
        )
        return "risk assessment: high, noted on an order already sent"
    return f"risk assessment noted ({level or 'no level'}); order is {row.state}"


def _this_round(row: Order) -> list[OrderTransition]:
    """The timeline since the order last became ready: this push's screening notes."""
    history = sorted(row.history, key=lambda t: t.id or 0)
    start = 0
    for index, t in enumerate(history):
        if t.to_state == states.READY and t.from_state != states.READY:
            start = index
    return history[start:]


def _released_from_fraud_hold(row: Order) -> bool:
    """The merchant released this order from a fraud hold: their decision stands. Only the
    merchant's release counts (``jobs.decide.release``'s reasons): an order update re-deciding a
    held order moves it to ready too, and is screened again."""
    history = sorted(row.history, key=lambda t: t.id or 0)
    held = [
        i for i, t in enumerate(history) if t.to_state == states.HELD and t.reason.startswith((HIGH_RISK, UNCHECKED))
    ]
    return bool(held) and any(
        t.from_state == states.HELD and t.reason.startswith(MERCHANT_RELEASES) for t in history[held[-1] :]
    )


def _recheck_id(row: Order) -> str:
    return f"risk-{row.id}-{row.generation}"


def _hold(runtime: Runtime, order_id: int, reason: str) -> str:
    with transaction(runtime.sessions) as session:
        row = order_store.get_for_update(session, order_id)
        if row is not None and row.state == states.READY:
            order_store.transition(row, states.HELD, reason)
    return "held"
