"""The order pipeline: apply a platform's order delivery, push to the provider, cancel there.

Every job carries ids only and can run twice. Decisions come from ``jobs.decide`` (pure); this
module loads rows, records transitions in the same transaction as their outcome, calls the
provider with the order's deterministic reference, and enqueues follow-ups only after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rq import Retry
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from config import log_context
from integrations.errors import AuthError, InvalidRequestError, NotCancellableError, RetryableError
from integrations.fulfilment.base import FulfilmentProvider
from integrations.fulfilment.reference import make_reference
from integrations.model import Order as NeutralOrder
from integrations.model import ProviderOrderRef
from integrations.platforms import OrderEvent
from jobs import decide as decisions
from jobs import edits, fraud, push_waiters, states
from jobs.order_diff import sent_from
from jobs.parties import provider_for
from jobs.queues import attempts_so_far, enqueue_new, job_is_live, next_retry, run_now
from jobs.runtime import Runtime, get_runtime
from store import audit
from store import orders as order_store
from store.db import transaction
from store.fulfilment_orders import lines_for_push
from store.merchant_view import held_reason
from store.models import Order, Shop
from store.shops import has_provider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowUp:
    """A job to enqueue once the transaction that decided it has committed."""

    kind: str  # push | cancel | edit
    order_id: int
    generation: int
    key: str = ""  # edit: digest of the order's version to send (jobs.edits.edit_key)


def enqueue_follow_ups(runtime: Runtime, follow_ups: list[FollowUp]) -> None:
    """Enqueue each follow-up once. A push or cancel job's id names the order's generation, so
    its job almost never exists yet: it is enqueued in one Redis round trip (``enqueue_new``),
    and the rare job that does exist is judged as ``enqueue_once`` judges it (still live: not
    enqueued again; ended: enqueued afresh)."""
    for f in follow_ups:
        if f.kind == "push":
            enqueue_new(
                runtime, "orders", "jobs.orders.push_order", f.order_id, job_id=f"push-{f.order_id}-{f.generation}"
            )
        elif f.kind == "cancel":
            enqueue_new(
                runtime, "orders", "jobs.orders.cancel_order", f.order_id, job_id=f"cancel-{f.order_id}-{f.generation}"
            )
        elif f.kind == "edit":
            edits.enqueue_edit(runtime, f.order_id, f.key)


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
    decision = decisions.decide(order_model, recorded, shop.settings or {}, has_provider=has_provider(shop))
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
        edits.remember_sent(session, row)  # an order pushed before snapshots were kept
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
    edit = edits.edit_key(session, row) if decision.action == decisions.UPDATE else None
    return [FollowUp("edit", row.id, row.generation, edit)] if edit else []


def release_waiting(runtime: Runtime, shop_id: int, actor: str) -> int:
    """The shop has just saved (and tested) a provider: decide again every order held "waiting
    for a provider", each transition on its timeline, and push those that are ready, once each
    (deterministic job ids; the rows are locked, so two saves cannot both release one order).
    Returns how many were queued. Call only after the provider has been saved and tested."""
    follow_ups: list[FollowUp] = []
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.status != "active" or not has_provider(shop):
            return 0
        rows = session.scalars(
            select(Order)
            .where(Order.shop_id == shop_id, Order.state == states.HELD)
            .options(selectinload(Order.history), selectinload(Order.lines))
            .order_by(Order.id)
            .with_for_update()
        ).all()
        for row in rows:
            recorded = decisions.Recorded(state=row.state, platform_updated_at=None)
            decision = decisions.provider_saved(
                order_store.to_model(row), recorded, held_reason(row), shop.settings or {}
            )
            if decision.action == decisions.UPDATE:
                continue
            if decision.state == states.HELD:
                # Held again, now by one of the shop's own rules: through received, so the
                # timeline shows the new reason as a transition into held.
                order_store.transition(row, states.RECEIVED, f"{shop.provider} is set ({actor}): deciding again")
            if decision.state:
                order_store.transition(row, decision.state, f"{decision.reason} ({actor})")
            if decision.action == decisions.PUSH:
                follow_ups.append(FollowUp("push", row.id, row.generation))
        if follow_ups:
            audit.record(
                session,
                shop,
                "orders_released",
                f"{len(follow_ups)} order(s) waiting for a provider sent to {shop.provider}",
                {"order_ids": [f.order_id for f in follow_ups]},
                actor,
            )
    enqueue_follow_ups(runtime, follow_ups)
    return len(follow_ups)


def _retry_or_fail(runtime: Runtime, order_id: int, error: RetryableError, action: str) -> Retry | None:
    """Ask RQ to run this job again no sooner than the provider asked, or fail the order for good."""
    retry = next_retry(runtime, error.retry_after)
    outcome = "retrying" if retry else "giving up"
    log.warning("%s of order %s failed (attempt %d): %s; %s", action, order_id, attempts_so_far(), error, outcome)
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
    log_context.bind(shop_id=row.shop_id if row is not None else None, order_id=order_id)  # JSON log lines
    shop = session.get(Shop, row.shop_id) if row is not None else None
    if row is None or shop is None:
        return row, shop, "gone"  # type: ignore[return-value]
    # An uninstalled shop's queued jobs become no-ops at once.
    return row, shop, "" if shop.status == "active" else "shop inactive"


def push_order(order_id: int) -> Retry | str:
    """Create the order at the shop's provider, once, under its deterministic reference.

    The shop's fraud rule screens the order before anything is sent (``jobs.fraud``). The rule
    is read with the order under its lock; only when it applies does the screening run (its own
    reads, maybe a call to the platform, never under the lock), and the order is then read and
    locked again, as after every screening. Most shops have the rule off: their push reads the
    order and its shop once, not twice."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        row, shop, reason = _load(session, order_id)
        screen_first = fraud.applies(row, shop)
        if not screen_first:
            prepared = _prepare_push(runtime, session, row, shop, reason)
    if screen_first:
        screened = fraud.screen(runtime, order_id)  # the shop's fraud rule, before anything is sent
        if screened is not None:
            return screened
        with transaction(runtime.sessions) as session:
            prepared = _prepare_push(runtime, session, *_load(session, order_id))
    if isinstance(prepared, str):
        return prepared
    order_model, reference, provider = prepared

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
        edit = edits.after_push(session, row, sent_from(order_model, reference), ref.duplicate)
        if edit:
            follow_ups.append(FollowUp("edit", row.id, row.generation, edit))
    enqueue_follow_ups(runtime, follow_ups)
    push_waiters.wake(runtime, order_id)  # parcels that came before this answer: run them now
    return "pushed"


def _prepare_push(
    runtime: Runtime, session: Session, row: Order, shop: Shop, reason: str
) -> str | tuple[NeutralOrder, str, FulfilmentProvider]:
    """Under the order's lock: mark it pushing under its reference and keep what will be sent;
    the order as sent, its reference and the provider, or why there is nothing to send."""
    if reason:
        return reason
    if row.cancelled:
        if row.state in (states.READY, states.PUSHING):
            order_store.transition(row, states.CANCELLED, "cancelled before push")
        return "cancelled"
    if row.state not in (states.READY, states.PUSHING):
        return f"nothing to do in state {row.state}"
    if not has_provider(shop):
        # No provider call, no retry: the order waits, and saving a provider releases it.
        order_store.transition(row, states.HELD, decisions.WAITING_FOR_PROVIDER)
        return decisions.WAITING_FOR_PROVIDER
    reference = row.provider_reference or make_reference(shop.id, row.platform_order_id, row.generation)
    row.provider_reference = reference
    row.provider = shop.provider
    row.push_attempts += 1
    if row.state == states.READY:
        order_store.transition(row, states.PUSHING, f"sending to {shop.provider} as {reference}")
    # Fulfilment-service mode: only the lines of the FOs Shopify asked our location to fulfil.
    order_model = lines_for_push(session, shop, row, order_store.to_model(row))
    if order_model is None:
        order_store.transition(row, states.RECEIVED, decisions.WAITING_FOR_REQUEST)
        return decisions.WAITING_FOR_REQUEST
    edits.before_send(session, row, sent_from(order_model, reference))
    return order_model, reference, provider_for(runtime, shop)


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
        if not has_provider(shop):
            # Nobody to ask, and retrying would not change that: the merchant retries once a
            # provider is set (``failed`` → retry → cancel_requested).
            row.failure_reason = f"the cancel could not be asked: the shop has no provider ({shop.provider or 'none'})"
            order_store.transition(row, states.FAILED, row.failure_reason)
            return "failed"
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
    """Whether the order's push job may still send a create, so the cancel must wait for it.

    Nothing else frees this wait: the sweep re-runs the cancel of a ``cancel_requested`` order,
    never its push. So a push marked queued that no queue holds any more (Redis restored between
    RQ's two writes) counts as gone, checked exactly; and a push waiting for a retry (possibly
    hours away in production) runs now: it will find the order cancelled and send nothing."""
    job_id = f"push-{row.id}-{row.generation}"
    if not job_is_live(runtime, job_id, exact=True):
        return False
    run_now(runtime, job_id)
    return True
