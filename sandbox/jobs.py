"""Jobs of the sandbox fulfilment centre: ship parcels, deliver them, and tell Relais by webhook.

Scheduled by ``sandbox.api`` on the ``sandbox`` queue, with ids only. Every job can run twice: a
parcel's state change is claimed by a conditional UPDATE (so a repeat, or a cancel that came
first, leaves it alone), and the webhook for that state is recorded as sent only once Relais
answered 2xx. A failed delivery raises ``RetryableError`` so RQ's ``Retry`` runs the job again,
which resends the *same* delivery (same ``webhook-id``, as Standard Webhooks requires) and does
nothing else.

Webhooks follow ShipBob's (reference/fulfilment.md A.1): Standard Webhooks signature headers
``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` (signed with the secret of the
account that owns the order, ``sandbox.accounts``), the topic in ``x-webhook-topic``,
body ``{topic, event_time, reference, order_id, shipment{id, status, carrier, service,
tracking_number, tracking_url, lines[{sku, quantity}]}}``. Topics: ``order.shipped`` and
``order.shipment.delivered``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from rq import Retry
from sqlalchemy import select, update
from standardwebhooks import Webhook

from integrations.errors import RetryableError
from jobs.runtime import Runtime, get_runtime
from sandbox.accounts import webhook_secret
from sandbox.carriers import buy_label
from sandbox.models import SandboxShipment, consume_stock, iso
from store.db import transaction
from store.models import utcnow

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/fulfilment/sandbox"
# event → (topic, status column that must hold, time column, "sent" column)
EVENTS = {
    "shipped": ("order.shipped", ("shipped", "delivered"), "shipped_at", "shipped_notified_at"),
    "delivered": ("order.shipment.delivered", ("delivered",), "delivered_at", "delivered_notified_at"),
}
#: retries of a sandbox job whose webhook Relais did not acknowledge (needs RQ's scheduler, as
#: ``enqueue_in`` does)
SHIP_RETRY = Retry(max=6, interval=[5, 15, 60, 300, 900, 3600])


def schedule(runtime: Runtime, delays: int, func: str, *ids: int) -> None:
    """Enqueue ``func(*ids)`` on the sandbox queue ``delays`` × SANDBOX_SHIP_DELAY from now."""
    delay = timedelta(seconds=runtime.settings.sandbox_ship_delay * delays)
    runtime.queue("sandbox").enqueue_in(delay, func, *ids, retry=SHIP_RETRY)


def ship_order(sandbox_order_id: int) -> None:
    """Ship the order's first parcel now; a second parcel (split order) ships one delay later."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        parcels = session.execute(
            select(SandboxShipment.id, SandboxShipment.status)
            .where(SandboxShipment.order_id == sandbox_order_id)
            .order_by(SandboxShipment.position)
        ).all()
    if not parcels:
        log.warning("sandbox order %s does not exist; nothing to ship", sandbox_order_id)
        return
    ship_shipment(parcels[0].id)
    for parcel in parcels[1:]:
        if parcel.status == "processing":
            schedule(runtime, 1, "sandbox.jobs.ship_shipment", parcel.id)


def ship_shipment(sandbox_shipment_id: int) -> None:
    """Buy a label and ship the parcel unless it is no longer processing; then notify Relais."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        shipment = session.get(SandboxShipment, sandbox_shipment_id)
        if shipment is None:
            return
        if shipment.status == "processing":
            order = shipment.order
            label = buy_label(order.recipient.get("country_code", ""), order.shipping_method)
            claimed = session.execute(
                update(SandboxShipment)
                .where(SandboxShipment.id == shipment.id, SandboxShipment.status == "processing")
                .values(
                    status="shipped",
                    carrier=label.carrier,
                    service=label.service,
                    tracking_number=label.tracking_number,
                    tracking_url=label.tracking_url,
                    shipped_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed:
                consume_stock(session, order.account, shipment.lines)
    if notify(runtime, sandbox_shipment_id, "shipped"):
        schedule(runtime, 2, "sandbox.jobs.deliver_shipment", sandbox_shipment_id)


def deliver_shipment(sandbox_shipment_id: int) -> None:
    """Mark a shipped parcel delivered and notify Relais (``order.shipment.delivered``)."""
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        session.execute(
            update(SandboxShipment)
            .where(SandboxShipment.id == sandbox_shipment_id, SandboxShipment.status == "shipped")
            .values(status="delivered", delivered_at=utcnow())
        )
    notify(runtime, sandbox_shipment_id, "delivered")


def notify(runtime: Runtime, sandbox_shipment_id: int, event: str) -> bool:
    """Send the parcel's ``event`` webhook unless already acknowledged.

    True when this call is the one that recorded it as sent. Raises ``RetryableError`` when Relais
    did not answer 2xx, leaving it unsent for the next try.
    """
    topic, states, time_column, sent_column = EVENTS[event]
    with transaction(runtime.sessions) as session:
        shipment = session.get(SandboxShipment, sandbox_shipment_id)
        if shipment is None or shipment.status not in states or getattr(shipment, sent_column) is not None:
            return False
        order = shipment.order
        account = order.account
        payload = {
            "topic": topic,
            "event_time": iso(getattr(shipment, time_column)),
            "reference": order.reference,
            "order_id": order.id,  # the sandbox's order id: Relais checks it is the one it stored
            "shipment": {**shipment.as_json(), "status": event},
        }
    # A stable id per parcel and event: a retried job resends the same delivery, and Relais'
    # inbox drops the copy by this key.
    post_webhook(runtime, f"msg_sandbox_{sandbox_shipment_id}_{event}", topic, payload, account)
    with transaction(runtime.sessions) as session:
        column = getattr(SandboxShipment, sent_column)
        return bool(
            session.execute(
                update(SandboxShipment)
                .where(SandboxShipment.id == sandbox_shipment_id, column.is_(None))
                .values({sent_column: utcnow()})
            ).rowcount
        )


def signed_headers(secret: str, delivery_id: str, topic: str, body: str, at: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` (also used by tests to forge deliveries)."""
    at = at or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery_id, at, body),
        "x-webhook-topic": topic,
    }


def post_webhook(runtime: Runtime, delivery_id: str, topic: str, payload: dict[str, Any], account: str) -> None:
    """POST one delivery, signed with ``account``'s own secret, to Relais' provider webhook route;
    non-2xx raises ``RetryableError``."""
    settings = runtime.settings
    url = settings.public_url.rstrip("/") + WEBHOOK_PATH
    body = json.dumps(payload, separators=(",", ":"))
    headers = signed_headers(webhook_secret(settings, account), delivery_id, topic, body)
    try:
        response = runtime.http.post(url, data=body.encode(), headers=headers, timeout=settings.provider_timeout)
    except requests.RequestException as exc:
        raise RetryableError(f"sandbox webhook {delivery_id} to {url} failed: {exc.__class__.__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise RetryableError(
            f"sandbox webhook {delivery_id} to {url} answered {response.status_code}", status=response.status_code
        )
    log.info("sandbox webhook %s (%s) delivered", delivery_id, topic)
