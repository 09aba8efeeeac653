"""Fulfilment-service mode: create the shop's service, and find the requests waiting for it.

The service is made at install (new installs default to this mode), by ``shop add --setting
fulfilment_mode=service``, or when the merchant switches the mode; its location becomes the
shop's ``location_id``, so tracking is written on its fulfilment orders only and stock to it.

Requests reach ``jobs.fulfilment_requests`` three ways: the ``fulfillment_orders/*`` webhooks
(``handle_event``), the ``fulfillment_order_notification`` ping (``web.fulfilment_callback``,
which enqueues ``poll_shop``) and the scheduled poll (``poll_all``), the safety net for a lost
webhook or ping: ``assignedFulfillmentOrders`` at our location, requested or cancellation
requested.
"""

from __future__ import annotations

import json
import logging

from rq import Retry
from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.errors import AuthError, InvalidRequestError, RetryableError
from integrations.outbound import merchant_text
from integrations.shopify import fulfilment_orders as fos
from integrations.shopify.fulfilment_service import callback_url, ensure_service, service_name
from jobs.fulfilment_requests import enqueue_sync
from jobs.parties import platform_for
from jobs.queues import enqueue_once, next_retry
from jobs.runtime import Runtime, get_runtime
from store import audit
from store.db import transaction
from store.fulfilment_orders import in_service_mode, service_of
from store.fulfilment_service_models import FulfilmentService
from store.models import Shop, WebhookEvent
from store.sync_models import tell_merchant

log = logging.getLogger(__name__)

POLL_INTERVAL = 300  # seconds: Shopify's ping is throttled to about one a minute; this catches lost ones
ASSIGNMENT_STATUSES = ("FULFILLMENT_REQUESTED", "CANCELLATION_REQUESTED")


def enqueue_setup(runtime: Runtime, shop_id: int) -> bool:
    func = "jobs.fulfilment_service.create_service"
    return enqueue_once(runtime, "maintenance", func, shop_id, job_id=f"fservice-{shop_id}")


def create_service(shop_id: int) -> Retry | str:
    """Job: the shop's fulfilment service exists and is stored (see ``ensure_now``)."""
    runtime = get_runtime()
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or not in_service_mode(shop):
            return "not in fulfilment-service mode"
    try:
        return ensure_now(runtime, shop_id)
    except RetryableError as exc:
        retry = next_retry(runtime, exc.retry_after)
        return retry if retry is not None else _tell(runtime, shop_id, f"fulfilment service not created: {exc}")
    except (AuthError, InvalidRequestError) as exc:
        return _tell(runtime, shop_id, f"Shopify refused our fulfilment service: {merchant_text(exc)}")


def ensure_now(runtime: Runtime, shop_id: int) -> str:
    """Find or create the service for the shop's provider account and store it; its location
    becomes the shop's ``location_id``. Idempotent: Shopify is asked by name before creating,
    so a second run or a crash between create and store never makes a second service."""
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.status != "active" or shop.platform != "shopify":
            return "shop inactive"
        name = service_name(shop.provider)
        client = platform_for(runtime, shop).admin()  # type: ignore[attr-defined]
    found = ensure_service(client, name, callback_url(runtime.settings.public_url))
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id, with_for_update=True)
        row = session.scalars(
            select(FulfilmentService).where(FulfilmentService.shop_id == shop_id, FulfilmentService.name == name)
        ).first()
        if row is None:
            row = FulfilmentService(shop_id=shop_id, name=name, provider=shop.provider)
            session.add(row)
        row.service_id, row.location_id, row.callback_url = found.service_id, found.location_id, found.callback_url
        shop.settings = {**(shop.settings or {}), "location_id": found.location_id}
        what = "created" if found.created else "found"
        audit.record(
            session, shop, "fulfilment_service", f"fulfilment service {name} {what}", {"location": found.location_id}
        )
        tell_merchant(session, shop_id, f"fulfilment service {name} {what}; its location receives your orders")
    return f"service {what}: {found.service_id} at {found.location_id}"


def _tell(runtime: Runtime, shop_id: int, text: str) -> str:
    with transaction(runtime.sessions) as session:
        tell_merchant(session, shop_id, text)
    log.warning("shop %s: %s", shop_id, text)
    return text


def poll_all() -> int:
    """Cron: one poll per active Shopify shop in fulfilment-service mode."""
    runtime = get_runtime()
    with runtime.sessions() as session:
        shops = session.scalars(select(Shop).where(Shop.status == "active", Shop.platform == "shopify")).all()
        ids = [shop.id for shop in shops if in_service_mode(shop)]
    return sum(enqueue_poll(runtime, shop_id) for shop_id in ids)


def enqueue_poll(runtime: Runtime, shop_id: int) -> bool:
    return enqueue_once(runtime, "orders", "jobs.fulfilment_service.poll_shop", shop_id, job_id=f"fo-poll-{shop_id}")


def poll_shop(shop_id: int) -> Retry | str:
    """Every FO at our location waiting for an answer gets its sync job (once each)."""
    runtime = get_runtime()
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        service = service_of(session, shop_id) if shop is not None else None
        if shop is None or shop.status != "active" or not in_service_mode(shop) or service is None:
            return "not in fulfilment-service mode"
        location = service.location_id
        client = platform_for(runtime, shop).admin()  # type: ignore[attr-defined]
    try:
        waiting = [fo_id for status in ASSIGNMENT_STATUSES for fo_id in fos.assigned(client, location, status)]
    except RetryableError as exc:
        retry = next_retry(runtime, exc.retry_after)
        return retry if retry is not None else f"Shopify unavailable: {exc}"
    queued = sum(enqueue_sync(runtime, shop_id, fo_id) for fo_id in dict.fromkeys(waiting))
    return f"{len(waiting)} waiting, {queued} queued"


def handle_event(session: Session, shop: Shop, event: WebhookEvent) -> tuple[str, list[str]]:
    """A ``fulfillment_orders/*`` delivery: the FOs it names, to sync after commit."""
    if not in_service_mode(shop):
        return "stored (shop is not in fulfilment-service mode)", []
    payload = json.loads(event.body)
    if not isinstance(payload, dict):
        raise ValueError(f"{event.topic} payload is not a JSON object")
    ids = fos.ids_in(payload)
    return f"{event.topic}: {len(ids)} fulfilment order(s) to read", ids
