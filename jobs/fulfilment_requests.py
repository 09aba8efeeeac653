"""Fulfilment and cancellation requests of Shopify fulfilment orders (fulfilment-service mode).

Whatever said an FO changed (a ``fulfillment_orders/*`` webhook, the callback's ping, the
scheduled poll), ``sync_fulfilment_order`` reads the FO as it is now and acts on its state:

- a fulfilment request at our location: the order goes through the usual push (only this FO's
  lines, the order's deterministic reference), then the request is accepted once the provider
  has it, or rejected with the provider's reason (timeline and merchant notice);
- a cancellation request: the usual cancel at the provider, then accepted when the provider
  cancelled, rejected with the reason when a parcel already left;
- on hold: nothing is sent while it lasts; moved away from our location after the push: the
  provider is asked to cancel (the merchant sees why).

It runs twice harmlessly: it answers only an FO still waiting for an answer, and the push and
the cancel are the pipeline's own idempotent jobs, called in-line.
"""

from __future__ import annotations

import logging

from rq import Retry
from sqlalchemy.orm import Session

from integrations.errors import AuthError, InvalidRequestError, RetryableError
from integrations.shopify import fulfilment_orders as fos
from integrations.shopify.admin import AdminClient
from jobs import decide as decisions
from jobs import states
from jobs.orders import FollowUp, cancel_order, enqueue_follow_ups, push_order
from jobs.parties import platform_for
from jobs.queues import enqueue_once, next_retry
from jobs.runtime import Runtime, get_runtime
from store import orders as order_store
from store.db import transaction
from store.fulfilment_orders import ORDER_WEBHOOKS_MODE, SENT_STATES, fo_row, in_service_mode, record, service_of
from store.models import Order, Shop
from store.shops import has_provider
from store.sync_models import tell_merchant

log = logging.getLogger(__name__)

# Shopify's request status once answered → our FO row's state.
SETTLED = {
    "ACCEPTED": "accepted",
    "REJECTED": "rejected",
    "CANCELLATION_ACCEPTED": "cancelled",
    "CANCELLATION_REJECTED": "cancellation_rejected",
    "CLOSED": "closed",
}
ACCEPTED_STATES = frozenset({states.PUSHED, states.PARTIALLY_SHIPPED, states.SHIPPED, states.DELIVERED})


def enqueue_sync(runtime: Runtime, shop_id: int, fo_id: str) -> bool:
    number = fo_id.rsplit("/", 1)[-1]
    func = "jobs.fulfilment_requests.sync_fulfilment_order"
    return enqueue_once(runtime, "orders", func, shop_id, fo_id, job_id=f"fo-{shop_id}-{number}")


def sync_fulfilment_order(shop_id: int, fo_id: str) -> Retry | str:
    """Read FO ``fo_id`` and do what its state asks (see the module's docstring)."""
    runtime = get_runtime()
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.status != "active" or not in_service_mode(shop):
            return "shop inactive or not in fulfilment-service mode"
        service = service_of(session, shop_id)
        if service is None:
            return "the shop has no fulfilment service yet"
        location = service.location_id
        client = platform_for(runtime, shop).admin()  # type: ignore[attr-defined]
    try:
        fo = fos.read(client, fo_id)
        if fo is None:
            return "Shopify has no such fulfilment order for us"
        if fo.location_id != location:
            return _moved_away(runtime, shop_id, fo)
        if fo.request_status == "CANCELLATION_REQUESTED":
            return _cancellation_request(runtime, shop_id, client, fo)
        if fo.status == "ON_HOLD":
            return _on_hold(runtime, shop_id, fo)
        if fo.request_status == "SUBMITTED" and fo.status in ("OPEN", "IN_PROGRESS"):
            return _fulfilment_request(runtime, shop_id, client, fo)
    except RetryableError as exc:
        retry = next_retry(runtime, exc.retry_after)
        return retry if retry is not None else f"Shopify unavailable ({exc}); the poll asks again"
    except (AuthError, InvalidRequestError) as exc:
        log.warning("shop %s: fulfilment order %s: %s", shop_id, fo_id, exc)
        return f"Shopify refused: {exc}"
    with transaction(runtime.sessions) as session:  # e.g. our answer got through but its reply was lost
        record(session, shop_id, fo, SETTLED.get(fo.request_status), keep_lines=True)
    return f"nothing to answer ({fo.status}, {fo.request_status})"


def _order_of(session: Session, shop_id: int, fo: fos.FulfilmentOrder) -> Order | None:
    return order_store.find(session, shop_id, fo.legacy_order_id, lock=True)


def _fulfilment_request(runtime: Runtime, shop_id: int, client: AdminClient, fo: fos.FulfilmentOrder) -> Retry | str:
    with transaction(runtime.sessions) as session:
        earlier = fo_row(session, shop_id, fo.id)
        asked_again = earlier is not None and earlier.state == "rejected"
        unsent = earlier is None or earlier.state not in SENT_STATES
        row = record(session, shop_id, fo, "requested")
        order = _order_of(session, shop_id, fo)
        if order is None:  # the order's webhook has not come yet (Shopify does not order topics)
            retry = next_retry(runtime, None)
            return retry if retry is not None else "order not received yet; the poll asks again"
        row.order_id = order.id
        order_id, label = order.id, fo.order_name or fo.legacy_order_id
        late = unsent and order.state in states.AT_PROVIDER | states.FULLY_SHIPPED
        if late:  # a further FO of an order already sent: its lines are not at the provider
            row.state, reference = "rejected", order.provider_reference
        if asked_again and order.state == states.FAILED:
            order_store.transition(order, states.RECEIVED, f"Shopify requested fulfilment of {label} again")
        if order.state in (states.RECEIVED, states.HELD):
            shop = session.get(Shop, shop_id)
            rules = {**(shop.settings or {}), "fulfilment_mode": ORDER_WEBHOOKS_MODE}
            recorded = decisions.Recorded(order.state, None)
            decision = decisions.decide(order_store.to_model(order), recorded, rules, has_provider(shop))
            if decision.action != decisions.PUSH:
                return f"request waits: {decision.reason}"  # answered once the order can go (poll)
            count = sum(line["quantity"] for line in row.lines or [])
            order_store.transition(
                order, states.READY, f"Shopify requested fulfilment of {label}: {count} unit(s) at our location"
            )
    if late:
        why = f"the order already went to the warehouse as {reference}; these lines were not sent with it"
        fos.reject_request(client, fo.id, "OTHER", why)
        return _answered(runtime, shop_id, fo, "rejected", f"fulfilment request rejected: {why}")
    outcome = push_order(order_id)
    if isinstance(outcome, Retry):
        return outcome
    with runtime.sessions() as session:
        order = session.get(Order, order_id)
        state, reason, reference = order.state, order.failure_reason or "", order.provider_reference
        attempt = order.attempts[-1].detail if order.attempts else None
    if state in ACCEPTED_STATES:
        fos.accept_request(client, fo.id, f"Sent to the warehouse as {reference}")
        return _answered(runtime, shop_id, fo, "accepted", "fulfilment request accepted")
    if state == states.FAILED:
        fields = list(((attempt or {}).get("details") or {}).keys()) if isinstance(attempt, dict) else []
        code = fos.rejection_reason(reason, [str(f) for f in fields])
        fos.reject_request(client, fo.id, code, reason)
        return _answered(runtime, shop_id, fo, "rejected", f"fulfilment request rejected ({code}): {reason}")
    if state in states.CANCEL_STATES:
        fos.reject_request(client, fo.id, "OTHER", f"the order is {state.replace('_', ' ')}")
        return _answered(runtime, shop_id, fo, "rejected", f"fulfilment request rejected: order {state}")
    return f"request waits: order {state}"


def _answered(runtime: Runtime, shop_id: int, fo: fos.FulfilmentOrder, fo_state: str, text: str) -> str:
    """Record Shopify's answer on the FO row and the order's timeline; a refusal is also the
    merchant's notice (it needs them: a SKU to fix, an address to correct)."""
    with transaction(runtime.sessions) as session:
        row = record(session, shop_id, fo, fo_state, keep_lines=True)
        row.reason = text
        order = _order_of(session, shop_id, fo)
        if order is not None:
            order_store.note(order, text)
        if fo_state in ("rejected", "cancellation_rejected"):
            tell_merchant(session, shop_id, f"order {fo.order_name or fo.legacy_order_id}: {text}")
    return fo_state


def _cancellation_request(runtime: Runtime, shop_id: int, client: AdminClient, fo: fos.FulfilmentOrder) -> Retry | str:
    with transaction(runtime.sessions) as session:
        record(session, shop_id, fo, "cancellation_requested", keep_lines=True)
        order = _order_of(session, shop_id, fo)
        if order is None or order.state in states.BEFORE_PUSH:
            pass_through = True  # nothing reached the provider
        else:
            pass_through = False
            order_id = order.id
            if order.state in states.AT_PROVIDER:
                order_store.transition(order, states.CANCEL_REQUESTED, "Shopify asked to cancel the fulfilment")
    if pass_through:
        fos.accept_cancellation(client, fo.id, "Nothing had been sent to the warehouse")
        return _answered(runtime, shop_id, fo, "cancelled", "cancellation request accepted: nothing was sent")
    outcome = cancel_order(order_id)
    if isinstance(outcome, Retry):
        return outcome
    with runtime.sessions() as session:
        order = session.get(Order, order_id)
        state = order.state
        why = order.history[-1].reason if order.history else state
    if state == states.CANCELLED:
        fos.accept_cancellation(client, fo.id, "Cancelled at the warehouse")
        return _answered(runtime, shop_id, fo, "cancelled", "cancellation request accepted: cancelled at the warehouse")
    if state in (states.CANCEL_TOO_LATE, states.PARTIALLY_CANCELLED, states.SHIPPED, states.DELIVERED):
        fos.reject_cancellation(client, fo.id, f"Already shipped: {why}")
        return _answered(runtime, shop_id, fo, "cancellation_rejected", f"cancellation request rejected: {why}")
    return f"cancellation waits: order {state}"


def _on_hold(runtime: Runtime, shop_id: int, fo: fos.FulfilmentOrder) -> str:
    with transaction(runtime.sessions) as session:
        earlier = fo_row(session, shop_id, fo.id)
        record(session, shop_id, fo, "on_hold", keep_lines=True)
        order = _order_of(session, shop_id, fo)
        if order is not None and (earlier is None or earlier.state != "on_hold"):
            sent = order.state not in states.BEFORE_PUSH
            order_store.note(
                order,
                "fulfilment order put on hold on Shopify"
                + (" after it reached the warehouse" if sent else ": nothing is sent while it lasts"),
            )
    return "on hold"


def _moved_away(runtime: Runtime, shop_id: int, fo: fos.FulfilmentOrder) -> str:
    """The FO now sits at another location: if we had sent its lines and nothing left yet, the
    provider is asked to cancel (the merchant ships it elsewhere)."""
    follow_ups: list[FollowUp] = []
    with transaction(runtime.sessions) as session:
        earlier = fo_row(session, shop_id, fo.id)
        if earlier is None or earlier.state == "moved_away":
            return "not at our location"
        record(session, shop_id, fo, "moved_away", keep_lines=True)
        order = _order_of(session, shop_id, fo)
        if order is not None:
            if order.state in states.AT_PROVIDER:
                order_store.transition(order, states.CANCEL_REQUESTED, "fulfilment order moved to another location")
                follow_ups.append(FollowUp("cancel", order.id, order.generation))
            else:
                order_store.note(order, f"fulfilment order moved to another location (order {order.state})")
    enqueue_follow_ups(runtime, follow_ups)
    return "moved away"
