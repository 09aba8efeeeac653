"""What "converged" means for the drill, read from the outside: the database Relais wrote, what the
ShipBob fake holds (one order per reference), what the fake Shopify holds (fulfilments with
tracking), and which deliveries the senders saw acknowledged.

``look()`` returns every discrepancy, counted by kind, so a run that does not converge says which
fault lost or delayed what.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from store.models import FulfilmentAttempt, Order, OrderTransition, Shipment, WebhookEvent
from tests.drills.faults import DrillShipBob
from tests.drills.traffic import DrillOrder, Shipper
from tests.fakes.shopify_admin import FakeShopifyAdmin

STUCK = ("received", "ready", "pushing", "cancel_requested")
SHIPPED = ("shipped", "delivered")


@dataclass
class Look:
    problems: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    states: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, example: object) -> None:
        self.problems[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < 3:
            shown.append(str(example))

    @property
    def converged(self) -> bool:
        return not self.problems


def look(
    engine: Engine,
    shop_id: int,
    domain: str,
    orders: list[DrillOrder],
    shipbob: DrillShipBob,
    shopify: FakeShopifyAdmin,
    shipper: Shipper,
    acknowledged: set[str],
) -> Look:
    found = Look()
    with Session(engine) as session:
        states = {
            str(pid): state
            for pid, state in session.execute(
                select(Order.platform_order_id, Order.state).where(Order.shop_id == shop_id)
            ).all()
        }
        found.events.update(
            {
                status: n
                for status, n in session.execute(
                    select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
                ).all()
            }
        )
        stored = set(
            session.scalars(
                select(WebhookEvent.delivery_key).where(
                    WebhookEvent.source == "shopify", WebhookEvent.shop_id == shop_id
                )
            )
        )
        unprocessed = session.execute(
            select(WebhookEvent.id, WebhookEvent.status, WebhookEvent.source).where(
                WebhookEvent.status.in_(("received", "enqueued"))
            )
        ).all()
    found.states.update(states.values())
    for event_id, status, source in unprocessed:
        found.add(f"inbox row still {status}", f"event-{event_id} ({source})")
    if found.events.get("failed"):
        found.problems["inbox row failed"] = found.events["failed"]
    for webhook_id in acknowledged:
        if f"{domain}:{webhook_id}" not in stored:
            found.add("acknowledged (2xx) but not stored", webhook_id)

    references = shipbob.references()
    shipped = shipper.shipped_now()
    planned = {f"{shop_id}-{o.order_id}" for o in orders}
    for ref in references:
        if ref not in planned:
            found.add("at the provider but never ordered", ref)
    with shopify._lock:
        on_shop: Counter[str] = Counter()
        for fake in shopify.state.orders.values():
            for fulfilment in fake.fulfillments:
                if fulfilment.status == "SUCCESS":
                    on_shop.update(t["number"] for t in fulfilment.tracking)
    for order in orders:
        ref = f"{shop_id}-{order.order_id}"
        state = states.get(str(order.order_id))
        at_provider = references.get(ref)
        if state is None:
            found.add("order never recorded", order.order_id)
            continue
        if state in STUCK:
            found.add(f"stuck in {state}", order.order_id)
        if state == "failed":
            found.add("failed", order.order_id)
        if order.cancelled:
            if state != "cancelled":
                found.add(f"cancelled on the shop but {state} in Relais", order.order_id)
            if at_provider is not None and at_provider["status"] != "Cancelled":
                found.add("cancelled on the shop but live at the provider", ref)
            continue
        if at_provider is None:
            found.add("paid but not at the provider", order.order_id)
            continue
        if ref in shipped and state not in SHIPPED and state not in STUCK:
            found.add(f"shipped by the provider but {state} in Relais", order.order_id)
        for parcel in shipped.get(ref, []):
            seen = on_shop[parcel["tracking"]["tracking_number"]]
            if seen == 0:
                found.add("parcel not on the shop", order.order_id)
            elif seen > 1:
                found.add("parcel on the shop more than once", order.order_id)
        if ref not in shipped:
            found.add("at the provider, not shipped yet", ref)
    if shipper.pending():
        found.add("provider webhooks not yet delivered", shipper.pending())
    return found


def summary(found: Look) -> str:
    """One line: order states and inbox statuses."""
    states = ", ".join(f"{k} {v}" for k, v in sorted(found.states.items()))
    events = ", ".join(f"{k} {v}" for k, v in sorted(found.events.items()))
    return f"orders: {states} | inbox: {events}"


def story(engine: Engine, shop_id: int, platform_order_id: str) -> list[str]:
    """One order as Relais recorded it: transitions, provider attempts, parcels (UTC times)."""
    with Session(engine) as session:
        order = session.scalars(
            select(Order).where(Order.shop_id == shop_id, Order.platform_order_id == platform_order_id)
        ).one_or_none()
        if order is None:
            return [f"order {platform_order_id}: never recorded"]
        told = [f"order {platform_order_id} (id {order.id}): {order.state}"]
        rows: list[tuple[object, str]] = []
        for t in session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id)):
            rows.append((t.at, f"{t.from_state} → {t.to_state}: {t.reason} (event {t.event_id})"))
        for a in session.scalars(select(FulfilmentAttempt).where(FulfilmentAttempt.order_id == order.id)):
            rows.append((a.at, f"provider {a.action}: {a.outcome}"))
        for sh in session.scalars(select(Shipment).where(Shipment.order_id == order.id)):
            written = f"written {sh.written_at:%H:%M:%S}" if sh.written_at else "NOT written"
            rows.append(
                (sh.created_at, f"parcel {sh.provider_shipment_id} {sh.status} {sh.tracking_number}: {written}")
            )
        for at, line in sorted(rows, key=lambda r: str(r[0])):
            told.append(f"    {at:%H:%M:%S.%f}"[:-3] + f"  {line}")
    return told


def jobs_view(redis_url: str, job_ids: list[str]) -> list[str]:
    """What Redis says of these jobs: status, the worker holding it, whether that worker lives."""
    import redis as redis_lib
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    from rq.worker import Worker

    connection = redis_lib.Redis.from_url(redis_url, socket_timeout=5)
    alive = {w.name for w in Worker.all(connection=connection)}
    told = []
    for job_id in job_ids:
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            told.append(f"    job {job_id}: not in Redis")
            continue
        worker = job.worker_name or "-"
        state = "alive" if worker in alive else "gone"
        told.append(
            f"    job {job_id}: {job.get_status()}, worker {worker} ({state}), "
            f"enqueued {job.enqueued_at:%H:%M:%S}, started {job.started_at:%H:%M:%S}"
            if job.enqueued_at and job.started_at
            else f"    job {job_id}: {job.get_status()}, worker {worker} ({state})"
        )
    return told


def job_ids_for(engine: Engine, shop_id: int, found: Look) -> list[str]:
    """The RQ job ids behind the examples of what is stuck: inbox rows and orders."""
    ids: list[str] = []
    for kind, examples in found.examples.items():
        for example in examples:
            if example.startswith("event-"):
                ids.append(example.split()[0])
            elif kind == "parcel not on the shop" and example.isdigit():
                ids.extend(_tracking_job_ids(engine, shop_id, example))
            elif kind.startswith("stuck in") and example.isdigit():
                with Session(engine) as session:
                    row = session.scalars(
                        select(Order).where(Order.shop_id == shop_id, Order.platform_order_id == example)
                    ).one()
                    prefix = "cancel" if row.state == "cancel_requested" else "push"
                    ids.append(f"{prefix}-{row.id}-{row.generation}")
    return ids


def _tracking_job_ids(engine: Engine, shop_id: int, platform_order_id: str) -> list[str]:
    """``jobs.tracking.enqueue_write``'s ids for the order's parcels not yet on the shop."""
    import hashlib

    from jobs.tracking import tracking_key

    with Session(engine) as session:
        rows = session.scalars(
            select(Shipment)
            .join(Order, Order.id == Shipment.order_id)
            .where(Order.shop_id == shop_id, Order.platform_order_id == platform_order_id)
        ).all()
        return [
            f"tracking-{row.id}-{hashlib.sha256(tracking_key(row).encode()).hexdigest()[:12]}"
            for row in rows
            if row.written_tracking != tracking_key(row)
        ]
