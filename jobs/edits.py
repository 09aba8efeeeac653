"""Orders edited on the shop after they reached the provider: compare, then update in place,
cancel and re-create, or hold for the merchant (``jobs.order_diff`` decides, purely).

Durability: what the provider holds is the order's ``SentSnapshot``, written in the transaction
that records a successful create or update, so a repeated delivery of the same edit finds nothing
to send. A re-create is two steps kept on an ``OrderEdit`` row: ``cancelling`` (the old provider
order, by its stored id; repeating a cancel is harmless) and, only once the provider confirmed
the cancel, ``recreating``: the order gets its next generation's reference and goes back through
the ordinary push job (``push-{order}-{generation}``, a duplicate answer counts as success). A job
that stops anywhere is run again from that row, and there is never a second live provider order:
the create is not asked for before the cancel is confirmed. Every step is on the order's timeline.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime

from rq import Retry
from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations import model as neutral
from integrations.errors import AuthError, InvalidRequestError, NotCancellableError, NotEditableError, RetryableError
from integrations.fulfilment.reference import make_reference
from integrations.model import OrderChanges, ProviderOrderRef
from jobs import order_diff, states
from jobs.parties import provider_for
from jobs.queues import enqueue_once, next_retry
from jobs.runtime import Runtime, get_runtime
from store import orders as order_store
from store.db import transaction
from store.edit_models import OrderEdit, SentSnapshot
from store.fulfilment_orders import lines_for_push
from store.models import Order, Shop
from store.sync_models import tell_merchant

log = logging.getLogger(__name__)

OPEN = ("updating", "cancelling", "recreating")
# Where a change after push is compared with what the provider holds (at the provider, or shipped).
WATCHED_STATES = order_diff.EDITABLE_STATES | order_diff.SHIPPED_STATES


def _sent(snapshot: SentSnapshot) -> order_diff.Sent:
    return order_diff.sent_from_json(snapshot.reference, snapshot.ship_to, snapshot.lines)


def record_sent(session: Session, row: Order, sent: order_diff.Sent) -> SentSnapshot:
    """Keep ``sent`` as what the provider holds for ``row`` (same transaction as the outcome)."""
    return _write_sent(session, row, session.get(SentSnapshot, row.id), sent)


def _write_sent(session: Session, row: Order, snapshot: SentSnapshot | None, sent: order_diff.Sent) -> SentSnapshot:
    """``record_sent`` with the row's snapshot (None: it has none) already read by the caller.

    Returned so that a caller comparing with it later in the transaction does not read it again:
    once flushed, the session holds it only weakly, and a second ``session.get`` may be a second
    SELECT."""
    data = order_diff.sent_to_json(sent)
    if snapshot is None:
        snapshot = SentSnapshot(order_id=row.id)
        session.add(snapshot)
    snapshot.reference, snapshot.ship_to, snapshot.lines = data["reference"], data["ship_to"], data["lines"]
    return snapshot


def _provider_view(session: Session, row: Order) -> neutral.Order:
    """The order as its provider should hold it. In fulfilment-service mode that is only the
    lines Shopify asked our location to fulfil, so lines shipped from the merchant's own location
    never read as "added" (an order with none requested yet is compared whole)."""
    whole = order_store.to_model(row)
    shop = session.get(Shop, row.shop_id)
    if shop is None:
        return whole
    return lines_for_push(session, shop, row, whole) or whole


def remember_sent(session: Session, row: Order) -> None:
    """Before a newer platform view overwrites the row: an order sent before snapshots were kept
    gets one from the row (the last view applied, which is what its push sent)."""
    if row.provider_order_id and row.state in WATCHED_STATES and session.get(SentSnapshot, row.id) is None:
        sent = order_diff.sent_from(_provider_view(session, row), row.provider_reference or "")
        _write_sent(session, row, None, sent)


def edit_key(session: Session, row: Order, snapshot: SentSnapshot | None = None) -> str | None:
    """The key of the edit job to run when the order now differs from what the provider holds
    (None when it does not, or it is not at the provider). The key is a digest of the order's
    current version, so a repeated delivery of one edit asks for one job. ``snapshot``: the
    order's snapshot when the caller has just written it (else it is read here)."""
    if row.state not in WATCHED_STATES or row.cancelled:
        return None
    if snapshot is None:
        snapshot = session.get(SentSnapshot, row.id)
    if snapshot is None:
        return None
    model = _provider_view(session, row)
    if order_diff.diff(_sent(snapshot), model).empty:
        return None
    current = order_diff.sent_from(model, "")
    digest = json.dumps(order_diff.sent_to_json(current), sort_keys=True, default=str)
    return hashlib.sha256(digest.encode()).hexdigest()[:16]


def stuck_edits(session: Session, before: datetime) -> list[tuple[int, int]]:
    """``(order id, edit id)`` of edits left mid-step (updating, cancelling) since ``before``:
    their job was lost (a Redis flush, a killed worker); the sweep runs them again."""
    rows = session.execute(
        select(OrderEdit.order_id, OrderEdit.id)
        .where(OrderEdit.status.in_(("updating", "cancelling")), OrderEdit.updated_at <= before)
        .limit(5000)
    ).all()
    return [(order_id, edit_id) for order_id, edit_id in rows]


def enqueue_edit(runtime: Runtime, order_id: int, key: str) -> None:
    enqueue_once(runtime, "orders", "jobs.edits.edit_order", order_id, job_id=f"edit-{order_id}-{key}")


def before_send(session: Session, row: Order, sent: order_diff.Sent) -> None:
    """Before a create under ``sent.reference``: keep what the first attempt under that reference
    sends. If an answer is lost and a later attempt hears "duplicate", the provider holds that
    first attempt's version, not the later one (the order may have changed in between)."""
    snapshot = session.get(SentSnapshot, row.id)
    if snapshot is None or snapshot.reference != sent.reference:
        _write_sent(session, row, snapshot, sent)


def after_push(session: Session, row: Order, sent: order_diff.Sent, duplicate: bool = False) -> str | None:
    """A create was accepted: keep what it sent (a duplicate answer keeps the first attempt's,
    see ``before_send``), close a re-create it finished, and say whether the order differs from
    what the provider holds (the key of the edit job to run, else None)."""
    snapshot = None if duplicate else record_sent(session, row, sent)
    for edit in _recreating(session, row):
        edit.status = "recreated"
        # References stay out of the merchant's words: the attempts keep them (old cancel, new create).
        order_store.note(row, "edit applied: the edited order was sent again and the earlier one is cancelled")
    session.flush()
    return edit_key(session, row, snapshot)


def _open_edits(session: Session, order_id: int) -> list[OrderEdit]:
    return list(
        session.scalars(
            select(OrderEdit).where(OrderEdit.order_id == order_id, OrderEdit.status.in_(OPEN)).order_by(OrderEdit.id)
        )
    )


def _recreating(session: Session, row: Order) -> list[OrderEdit]:
    """The order's edits waiting for this push to re-create it. An edit becomes ``recreating``
    only in the transaction that moves the order to its next generation (``_cancel_then_recreate``),
    and generations only grow, so an order of the first generation has none: not asked (one
    query the fewer on every first push)."""
    if row.generation <= 1:
        return []
    return list(
        session.scalars(
            select(OrderEdit)
            .where(OrderEdit.order_id == row.id, OrderEdit.status == "recreating")
            .order_by(OrderEdit.id)
        )
    )


def _already_held(session: Session, order_id: int, described: str) -> bool:
    """Whether the order's latest edit was this same change, held: it is not tried or told again."""
    latest = session.scalars(
        select(OrderEdit).where(OrderEdit.order_id == order_id).order_by(OrderEdit.id.desc()).limit(1)
    ).first()
    return latest is not None and latest.status == "held" and latest.changes == described


def _hold(session: Session, row: Order, edit: OrderEdit, reason: str) -> str:
    edit.status, edit.reason = "held", reason
    order_store.note(row, f"edit held for the merchant: {reason}")
    tell_merchant(session, row.shop_id, f"{row.name or row.platform_order_id}: edit not applied: {reason}")
    return "held"


def edit_order(order_id: int) -> Retry | str:
    """Bring the provider's order in line with the shop's (see the module docstring)."""
    from jobs.orders import FollowUp, enqueue_follow_ups

    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        row = order_store.get_for_update(session, order_id)
        shop = session.get(Shop, row.shop_id) if row is not None else None
        if row is None or shop is None or shop.status != "active":
            return "gone"
        provider = provider_for(runtime, shop)
        model = _provider_view(session, row)
        snapshot = session.get(SentSnapshot, order_id)
        edit = next(iter(_open_edits(session, order_id)), None)
        if edit is None:
            if snapshot is None or not row.provider_order_id:
                return "nothing was sent to compare with"
            changes = order_diff.diff(_sent(snapshot), model)
            plan = order_diff.plan(changes, model, row.state, provider.name, provider.editable)
            if plan.action != order_diff.NOTHING and row.provider and row.provider != shop.provider:
                why = f"it was sent to {row.provider}, and the shop now uses {shop.provider}: not applied"
                plan = order_diff.Plan(order_diff.HOLD, why)
            if plan.action == order_diff.NOTHING:
                return plan.reason
            described = order_diff.describe(changes)
            if _already_held(session, order_id, described):  # a repeat of an edit held before
                return "held before: waiting for the merchant"
            edit = OrderEdit(
                order_id=order_id,
                status={order_diff.UPDATE: "updating", order_diff.RECREATE: "cancelling"}.get(plan.action, "held"),
                changes=described,
                old_reference=row.provider_reference or "",
                old_provider_order_id=row.provider_order_id or "",
                new_reference="",
                reason="",
                attempts=0,
            )
            session.add(edit)
            if plan.action == order_diff.HOLD:
                return _hold(session, row, edit, plan.reason)
            if plan.action == order_diff.CANCEL:
                edit.status, edit.reason = "cancelled", plan.reason
                order_store.transition(row, states.CANCEL_REQUESTED, plan.reason)
                follow_up = FollowUp("cancel", row.id, row.generation)
            else:
                order_store.note(row, f"edit after push: {plan.reason}")
                follow_up = None
        elif edit.status == "recreating":  # the cancel is confirmed: the push job sends it
            follow_up = FollowUp("push", row.id, row.generation)
        else:
            follow_up = None
        session.flush()
        edit.attempts += 1
        edit_id, step = edit.id, edit.status
        ref = ProviderOrderRef(edit.old_reference, edit.old_provider_order_id)
        changes = order_diff.diff(_sent(snapshot), model) if snapshot is not None else OrderChanges()
        if step == "updating" and changes.empty:  # a concurrent round sent it already
            edit.status = "applied"
            return "applied"
    if follow_up is not None:
        enqueue_follow_ups(runtime, [follow_up])
        return f"{follow_up.kind} queued"
    if step == "updating":
        return _update(runtime, order_id, edit_id, provider, ref, model, changes)
    if step == "cancelling":
        return _cancel_then_recreate(runtime, order_id, edit_id, provider, ref)
    return step


def _retry(runtime: Runtime, order_id: int, edit_id: int, exc: RetryableError, action: str) -> Retry | str:
    retry = next_retry(runtime, exc.retry_after)
    if retry is not None:
        return retry
    with transaction(runtime.sessions) as session:
        row, edit = order_store.get_for_update(session, order_id), session.get(OrderEdit, edit_id)
        if row is not None and edit is not None:
            _hold(session, row, edit, f"{action} kept failing: {exc}")
    return "held"


def _update(runtime, order_id, edit_id, provider, ref, model, changes) -> Retry | str:  # type: ignore[no-untyped-def]
    """Apply the change in place; a refusal holds the edit with the provider's reason."""
    attempt = {"action": "update", "reference": ref.reference}
    try:
        provider.update_order(ref, model, changes)
        outcome, error = "ok", ""
    except RetryableError as exc:
        _attempt(runtime, order_id, {**attempt, "outcome": "retryable", "detail": {"error": str(exc)}})
        return _retry(runtime, order_id, edit_id, exc, "the update")
    except (NotEditableError, InvalidRequestError, AuthError) as exc:
        outcome, error = "refused", str(exc)
    key = None
    with transaction(runtime.sessions) as session:
        row, edit = order_store.get_for_update(session, order_id), session.get(OrderEdit, edit_id)
        if row is None or edit is None:
            return "gone"
        if edit.status != "updating":  # a concurrent run (a sweep's resume) finished it
            return edit.status
        order_store.attempt(row, **attempt, outcome=outcome, detail={"error": error} if error else None)
        if error:
            return _hold(session, row, edit, f"{provider.name} refused the change: {error}")
        edit.status = "applied"
        snapshot = record_sent(session, row, order_diff.sent_from(model, ref.reference))
        order_store.note(row, f"edit applied at {provider.name}: {edit.changes}")
        session.flush()
        key = edit_key(session, row, snapshot)  # changed again meanwhile: one more round
    if key:
        enqueue_edit(runtime, order_id, key)
    return "applied"


def _cancel_then_recreate(runtime, order_id, edit_id, provider, ref) -> Retry | str:  # type: ignore[no-untyped-def]
    """Cancel the old provider order; only once confirmed, give the order its next reference and
    hand it to the push job. A cancel refused (picked, shipped) holds the edit; the old order stays."""
    attempt = {"action": "cancel", "reference": ref.reference}
    try:
        result = provider.cancel_order(ref)
        outcome, message = result.outcome, result.message
    except RetryableError as exc:
        _attempt(runtime, order_id, {**attempt, "outcome": "retryable", "detail": {"error": str(exc)}})
        return _retry(runtime, order_id, edit_id, exc, "the cancel before re-creating")
    except (NotCancellableError, NotEditableError) as exc:
        outcome, message = "too_late", str(exc)
    except (InvalidRequestError, AuthError) as exc:
        outcome, message = "refused", str(exc)
    from jobs.orders import FollowUp, enqueue_follow_ups

    follow_ups: list[FollowUp] = []
    with transaction(runtime.sessions) as session:
        row, edit = order_store.get_for_update(session, order_id), session.get(OrderEdit, edit_id)
        if row is None or edit is None:
            return "gone"
        if edit.status != "cancelling":  # a concurrent run (a sweep's resume) took the next step
            return edit.status
        order_store.attempt(row, **attempt, outcome=outcome, detail={"message": message} if message else None)
        if outcome == "partial":
            edit.status, edit.reason = "held", message
            order_store.transition(
                row,
                states.PARTIALLY_CANCELLED,
                f"the edit needed a re-create; {provider.name} cancelled only part: {message}",
            )
            tell_merchant(session, row.shop_id, f"{row.name}: edit not applied, order partially cancelled: {message}")
            return "partially cancelled"
        if outcome != "cancelled":
            return _hold(session, row, edit, f"{provider.name} could not cancel it to send it again: {message}")
        if row.state != states.PUSHED or row.cancelled:
            edit.status, edit.reason = "abandoned", f"order became {row.state} during the edit"
            order_store.note(row, f"cancelled at {provider.name} for the edit; not sent again: {edit.reason}")
            return "abandoned"
        row.generation += 1
        new_reference = make_reference(row.shop_id, row.platform_order_id, row.generation)
        edit.status, edit.new_reference = "recreating", new_reference
        row.provider_reference, row.provider_order_id = new_reference, None
        order_store.transition(
            row, states.PUSHING, f"cancelled at {provider.name} to apply the edit; sending the edited order again"
        )
        follow_ups.append(FollowUp("push", row.id, row.generation))
    enqueue_follow_ups(runtime, follow_ups)
    return "recreating"


def _attempt(runtime: Runtime, order_id: int, attempt: dict[str, object]) -> None:
    with transaction(runtime.sessions) as session:
        row = order_store.get_for_update(session, order_id)
        if row is not None:
            order_store.attempt(row, **attempt)
