"""The order pipeline: apply a platform's order delivery, push to the provider, cancel there.

Every job carries ids only and can run twice. Decisions come from ``jobs.decide`` (pure); this
module loads rows, records transitions in the same transaction as their outcome, calls the
provider with the order's deterministic reference, and enqueues follow-ups only after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rq import Retry
from sqlalchemy.orm import Session

from integrations.errors import AuthError, InvalidRequestError, NotCancellableError, RetryableError
from integrations.fulfilment.reference import make_reference
from integrations.model import ProviderOrderRef
from integrations.platforms import OrderEvent
from jobs import decide as decisions
from jobs import states
from jobs.parties import provider_for
from jobs.queues import attempts_so_far, enqueue_once, next_retry
from jobs.runtime import Runtime, get_runtime
from store import orders as order_store
from store.db import transaction
from store.models import Order, Shop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowUp:
    """A job to enqueue once the transaction that decided it has committed."""

    kind: str  # push | cancel
    order_id: int
    generation: int


def enqueue_follow_ups(runtime: Runtime, follow_ups: list[FollowUp]) -> None:
    for f in follow_ups:
        if f.kind == "push":
            enqueue_once(
                runtime, "orders", "jobs.orders.push_order", f.order_id, job_id=f"push-{f.order_id}-{f.generation}"
            )
        elif f.kind == "cancel":
            enqueue_once(
                runtime, "orders", "jobs.orders.cancel_order", f.order_id, job_id=f"cancel-{f.order_id}-{f.generation}"
            )


def apply_order_event(session: Session, shop: Shop, event: OrderEvent, event_id: int | None) -> list[FollowUp]:
    """Record what a delivery says about an order and decide; returns the jobs to enqueue."""
    row = order_store.find(session, shop.id, event.platform_order_id, lock=True)
    if event.order is None:  # the platform deleted the order: treat as a cancellation
        if row is None:
            return []
        order_model = order_store.to_model(row)
        order_model = type(order_model)(**{**order_model.__dict__, "cancelled": True})
    else:
        order_model = event.order
    recorded = (
        decisions.Recorded(state=row.state, platform_updated_at=order_store.as_utc(row.platform_updated_at))
        if row
        else None
    )
    decision = decisions.decide(order_model, recorded, shop.settings or {})
    if decision.action == decisions.STALE:
        if row is not None:
            order_store.note(row, f"ignored: {decision.reason}", event_id)
        return []
    if row is None:
        row = Order(
            shop_id=shop.id, platform_order_id=event.platform_order_id, provider=shop.provider, lines=[], history=[]
        )
        session.add(row)
        order_store.transition(row, states.RECEIVED, "received", event_id)
    if event.order is not None:
        order_store.apply_model(row, order_model)
    else:
        row.cancelled = True
    if decision.state and decision.state != row.state:
        order_store.transition(row, decision.state, decision.reason, event_id)
    session.flush()
    if decision.action == decisions.PUSH:
        return [FollowUp("push", row.id, row.generation)]
    if decision.action == decisions.CANCEL_AT_PROVIDER:
        return [FollowUp("cancel", row.id, row.generation)]
    return []


def _retry_or_fail(runtime: Runtime, order_id: int, error: RetryableError, action: str) -> Retry | None:
    """Ask RQ to run this job again no sooner than the provider asked, or fail the order for good."""
    retry = next_retry(runtime, error.retry_after)
    if retry is None:
        with transaction(runtime.sessions) as session:
            row = order_store.get_for_update(session, order_id)
            if row is not None:
                row.failure_reason = f"{action} failed after {attempts_so_far()} attempts: {error}"
                order_store.transition(row, states.FAILED, row.failure_reason)
    return retry


def _fail(runtime: Runtime, order_id: int, reason: str, attempt: dict[str, object]) -> None:
    with transaction(runtime.sessions) as session:
        row = order_store.get_for_update(session, order_id)
        if row is None:
            return
        order_store.attempt(row, **attempt)
        row.failure_reason = reason
        order_store.transition(row, states.FAILED, reason)


def _load(session: Session, order_id: int) -> tuple[Order, Shop, str]:
    """The order (locked) and its shop, or a reason why a job has nothing to do with them."""
    row = order_store.get_for_update(session, order_id)
    shop = session.get(Shop, row.shop_id) if row is not None else None
    if row is None or shop is None:
        return row, shop, "gone"  # type: ignore[return-value]
    # An uninstalled shop's queued jobs become no-ops at once.
    return row, shop, "" if shop.status == "active" else "shop inactive"


def push_order(order_id: int) -> Retry | str:
    """Create the order at the shop's provider, once, under its deterministic reference."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        row, shop, reason = _load(session, order_id)
        if reason:
            return reason
        if row.cancelled:
            if row.state in (states.READY, states.PUSHING):
                order_store.transition(row, states.CANCELLED, "cancelled before push")
            return "cancelled"
        if row.state not in (states.READY, states.PUSHING):
            return f"nothing to do in state {row.state}"
        reference = row.provider_reference or make_reference(shop.id, row.platform_order_id, row.generation)
        row.provider_reference = reference
        row.provider = shop.provider
        row.push_attempts += 1
        if row.state == states.READY:
            order_store.transition(row, states.PUSHING, f"sending to {shop.provider} as {reference}")
        order_model = order_store.to_model(row)
        provider = provider_for(runtime, shop)

    attempt: dict[str, object] = {"action": "create", "reference": reference}
    try:
        ref = provider.create_order(order_model, reference)
    except RetryableError as exc:
        _record_attempt(
            runtime, order_id, {**attempt, "outcome": "retryable", "detail": {"error": str(exc), "status": exc.status}}
        )
        retry = _retry_or_fail(runtime, order_id, exc, "push")
        return retry if retry is not None else "failed"
    except InvalidRequestError as exc:
        _fail(
            runtime,
            order_id,
            f"{provider.name} refused the order: {exc}",
            {**attempt, "outcome": "invalid", "detail": {"error": str(exc), "details": exc.details}},
        )
        return "failed"
    except AuthError as exc:
        _fail(
            runtime,
            order_id,
            f"{provider.name} refused our credentials: {exc}",
            {**attempt, "outcome": "auth", "detail": {"error": str(exc)}},
        )
        return "failed"

    follow_ups: list[FollowUp] = []
    with transaction(runtime.sessions) as session:
        row = order_store.get_for_update(session, order_id)
        if row is None:
            return "gone"
        row.provider_order_id = ref.provider_order_id
        row.failure_reason = None
        order_store.attempt(
            row,
            action="create",
            reference=reference,
            outcome="duplicate" if ref.duplicate else "ok",
            detail={"provider_order_id": ref.provider_order_id},
        )
        if row.state == states.PUSHING:
            order_store.transition(row, states.PUSHED, f"accepted by {provider.name} as order {ref.provider_order_id}")
        elif row.state == states.CANCEL_REQUESTED:
            follow_ups.append(FollowUp("cancel", row.id, row.generation))
    enqueue_follow_ups(runtime, follow_ups)
    return "pushed"


def _record_attempt(runtime: Runtime, order_id: int, attempt: dict[str, object]) -> None:
    with transaction(runtime.sessions) as session:
        row = order_store.get_for_update(session, order_id)
        if row is not None:
            order_store.attempt(row, **attempt)


def cancel_order(order_id: int) -> Retry | str:
    """Ask the provider to cancel an order it has; record the per-shipment outcome."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        row, shop, reason = _load(session, order_id)
        if reason:
            return reason
        if row.state != states.CANCEL_REQUESTED:
            return f"nothing to do in state {row.state}"
        reference = row.provider_reference or make_reference(shop.id, row.platform_order_id, row.generation)
        known_id = row.provider_order_id
        provider = provider_for(runtime, shop)

    attempt: dict[str, object] = {"action": "cancel", "reference": reference}
    try:
        ref = ProviderOrderRef(reference, known_id) if known_id else provider.find_order(reference)
        if ref is None:
            # The push may still be in flight; the push job re-enqueues us once it lands.
            _record_attempt(runtime, order_id, {**attempt, "outcome": "not_found", "detail": None})
            return _cancel_without_provider_order(runtime, order_id)
        result = provider.cancel_order(ref)
    except RetryableError as exc:
        _record_attempt(runtime, order_id, {**attempt, "outcome": "retryable", "detail": {"error": str(exc)}})
        retry = _retry_or_fail(runtime, order_id, exc, "cancel")
        return retry if retry is not None else "failed"
    except NotCancellableError as exc:
        result = None
        reason = str(exc)
    except (InvalidRequestError, AuthError) as exc:
        _fail(
            runtime,
            order_id,
            f"{provider.name} refused the cancel: {exc}",
            {**attempt, "outcome": "invalid", "detail": {"error": str(exc)}},
        )
        return "failed"

    with transaction(runtime.sessions) as session:
        row = order_store.get_for_update(session, order_id)
        if row is None:
            return "gone"
        if result is None:
            order_store.attempt(row, **attempt, outcome="too_late", detail={"error": reason})
            order_store.transition(row, states.CANCEL_TOO_LATE, f"{provider.name}: {reason}")
            return states.CANCEL_TOO_LATE
        detail = {
            "outcome": result.outcome,
            "message": result.message,
            "shipments": [s.__dict__ for s in result.shipments],
        }
        order_store.attempt(row, **attempt, outcome=result.outcome, detail=detail)
        to_state = {
            "cancelled": states.CANCELLED,
            "too_late": states.CANCEL_TOO_LATE,
            "partial": states.PARTIALLY_CANCELLED,
        }[result.outcome]
        order_store.transition(
            row,
            to_state,
            f"{provider.name} answered {result.outcome}" + (f": {result.message}" if result.message else ""),
        )
        return to_state


def _cancel_without_provider_order(runtime: Runtime, order_id: int) -> Retry | str:
    """No order at the provider under our reference: if the push never succeeded, nothing to cancel."""
    with transaction(runtime.sessions) as session:
        row = order_store.get_for_update(session, order_id)
        if row is None:
            return "gone"
        pushed = any(a.action == "create" and a.outcome in ("ok", "duplicate") for a in row.attempts)
        if not pushed and not _push_may_be_running(runtime, row):
            order_store.transition(row, states.CANCELLED, "cancelled before it reached the provider")
            return states.CANCELLED
    return Retry(max=runtime.settings.push_max_retries, interval=5)


def _push_may_be_running(runtime: Runtime, row: Order) -> bool:
    from jobs.queues import job_is_live

    return job_is_live(runtime, f"push-{row.id}-{row.generation}")
