"""The drift report of one reconciliation run, and the checks on the provider's side.

Reconciliation (``jobs.reconcile``) compares three parties: the shop, Relais and the provider.
What it finds goes into one report per shop per run, kept on ``shop_sync.drift_report`` (the
latest only), printed by ``flask reconcile SHOP`` and shown on the settings page:

- missing: what one side has and another lacks, by kind (``MISSING``);
- repaired: what the run fixed (or queued the job that fixes it);
- still wrong: what it could not fix, with the reason.

The provider-side checks here are platform- and provider-neutral, through the provider
interface: ``shipments(ref)`` for a batch of pushed orders per run (parcels the provider shipped
that Relais never recorded; pushed orders the provider does not have), and, where the provider
keeps a tracking-uploaded flag, ``unacknowledged_shipments()`` (shipped orders whose reference
Relais does not know). Parcels recorded but not written to the shop have their write enqueued
again. Every repair goes through the jobs a webhook would use, with their deterministic ids, so
a repair racing the normal path does nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from integrations.errors import AuthError, ConfigError, InvalidRequestError, NotFoundError, RetryableError
from integrations.model import ProviderEvent, ProviderOrderRef
from integrations.model import Shipment as ParcelModel
from integrations.outbound import merchant_text
from jobs import states
from jobs.parties import provider_for
from jobs.runtime import Runtime
from jobs.shipments import apply_provider_event, find_order_for
from jobs.tracking import enqueue_write, tracking_key
from store import orders as order_store
from store.db import transaction
from store.models import Order, OrderTransition, Shipment, Shop, utcnow
from store.sync_models import sync_row

log = logging.getLogger(__name__)

#: kinds of "missing", in the order they are shown
MISSING = {
    "orders_not_received": "orders on the shop that Relais never received",
    "changes_not_received": "order changes on the shop whose webhook never came",
    "orders_not_pushed": "orders Relais should have at the provider but has not pushed",
    "orders_missing_at_provider": "orders Relais pushed that the provider does not have",
    "orders_unknown_at_provider": "orders the provider shipped that Relais did not push",
    "parcels_not_recorded": "parcels the provider shipped that Relais had not recorded",
    "parcels_not_on_shop": "parcels shipped whose tracking is not on the shop",
}
LISTED = 50  # entries kept per list; the counts stay exact
PROVIDER_BATCH = 50  # pushed orders whose parcels are read at the provider per run
GRACE = timedelta(minutes=2)  # younger than this is the normal path still at work, not drift
SHIPPED = {"shipped": "shipped", "in_transit": "tracking_updated", "delivered": "delivered"}  # status → event kind
WRITE_REFUSED = "could not be written to the shop"  # jobs.tracking's note for a refusal (not transient)


def label(row: Order | None, reference: str = "") -> str:
    """How the report names an order: its shop name and id, else the provider reference."""
    if row is None:
        return reference
    return f"{row.name} ({row.platform_order_id})" if row.name else row.platform_order_id


@dataclass
class DriftReport:
    """One run's findings; ``as_json`` is what is stored and shown."""

    shop: str
    platform: str
    provider: str
    at: datetime = field(default_factory=utcnow)
    since: datetime | None = None
    checked: dict[str, int] = field(default_factory=lambda: {"shop_orders": 0, "provider_orders": 0})
    missing: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # exact totals: missing kinds, repaired, still_wrong
    repaired: list[dict[str, str]] = field(default_factory=list)
    still_wrong: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what a side could not check, and why

    def add_missing(self, kind: str, order: str, detail: str) -> None:
        self._add(self.missing.setdefault(kind, []), kind, {"order": order, "detail": detail})

    def add_repaired(self, order: str, what: str) -> None:
        self._add(self.repaired, "repaired", {"order": order, "what": what})

    def add_still_wrong(self, order: str, what: str, reason: str) -> None:
        self._add(self.still_wrong, "still_wrong", {"order": order, "what": what, "reason": reason})

    def _add(self, entries: list[dict[str, str]], key: str, entry: dict[str, str]) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        if len(entries) < LISTED:
            entries.append(entry)

    @property
    def drift(self) -> int:
        return sum(self.counts.get(kind, 0) for kind in MISSING) + self.counts.get("still_wrong", 0)

    def summary(self) -> str:
        missing = sum(self.counts.get(kind, 0) for kind in MISSING)
        return (
            f"{self.checked['shop_orders']} shop orders and {self.checked['provider_orders']} provider orders checked: "
            f"{missing} missing, {self.counts.get('repaired', 0)} repaired, "
            f"{self.counts.get('still_wrong', 0)} still wrong"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "shop": self.shop,
            "platform": self.platform,
            "provider": self.provider,
            "at": self.at.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "summary": self.summary(),
            "checked": dict(self.checked),
            "missing": [
                {"kind": kind, "title": title, "count": self.counts[kind], "entries": self.missing.get(kind, [])}
                for kind, title in MISSING.items()
                if self.counts.get(kind)
            ],
            "repaired": {"count": self.counts.get("repaired", 0), "entries": self.repaired},
            "still_wrong": {"count": self.counts.get("still_wrong", 0), "entries": self.still_wrong},
            "notes": list(self.notes),
        }


def report_lines(report: dict[str, Any]) -> list[str]:
    """A stored report (``as_json``) as plain text lines, for the CLI."""
    lines = [
        f"Drift report for {report['shop']} ({report['platform']} → {report['provider']}), {report['at']}",
        f"Shop orders changed since {report.get('since') or 'the shop was added'}",
        report["summary"],
    ]
    for note in report.get("notes") or []:
        lines.append(f"note: {note}")
    for group in report.get("missing") or []:
        lines.append(f"Missing: {group['title']} ({group['count']})")
        lines += [f"  {e['order']}: {e['detail']}" for e in group["entries"]]
        lines += _more(group["count"], group["entries"])
    for title, key in (("Repaired", "repaired"), ("Still wrong", "still_wrong")):
        section = report.get(key) or {"count": 0, "entries": []}
        lines.append(f"{title} ({section['count']})" + ("" if section["count"] else ": none"))
        for e in section["entries"]:
            lines.append(f"  {e['order']}: {e['what']}" + (f" (why: {e['reason']})" if e.get("reason") else ""))
        lines += _more(section["count"], section["entries"])
    return lines


def _more(count: int, entries: list[Any]) -> list[str]:
    return [f"  … and {count - len(entries)} more"] if count > len(entries) else []


def save(runtime: Runtime, shop_id: int, report: DriftReport) -> None:
    with transaction(runtime.sessions) as session:
        sync_row(session, shop_id).drift_report = report.as_json()
    if report.drift:
        log.warning("shop %s: reconciliation: %s", shop_id, report.summary())


# --- Relais' own records ----------------------------------------------------------------------
def check_unpushed(runtime: Runtime, shop_id: int, report: DriftReport) -> None:
    """Orders that should be at the provider and are not: stuck before the push (the sweep
    re-enqueues those) or failed (the merchant must act: the provider refused, or retries ran out)."""
    cutoff = utcnow() - GRACE
    with runtime.sessions() as session:
        rows = session.scalars(
            select(Order)
            .where(
                Order.shop_id == shop_id,
                or_(
                    Order.state == states.FAILED,
                    Order.state.in_((states.READY, states.PUSHING)) & (Order.updated_at <= cutoff),
                ),
            )
            .order_by(Order.id)
        ).all()
        for row in rows:
            report.add_missing("orders_not_pushed", label(row), row.state)
            if row.state == states.FAILED:
                report.add_still_wrong(label(row), "not at the provider", row.failure_reason or "failed")
            else:
                since = order_store.as_utc(row.updated_at)
                report.add_still_wrong(
                    label(row),
                    "not at the provider yet",
                    f"{row.state} since {since:%Y-%m-%d %H:%M} UTC; the sweep enqueues its push again",
                )


def check_unwritten_parcels(runtime: Runtime, shop_id: int, report: DriftReport) -> None:
    """Parcels recorded with tracking whose tracking is not (or not as now) on the shop: their write
    is enqueued again, unless the shop refused it (then the reason is reported, not retried)."""
    cutoff = utcnow() - GRACE
    written_key = Shipment.tracking_number + "|" + Shipment.carrier + "|" + Shipment.tracking_url
    with runtime.sessions() as session:
        rows = session.execute(
            select(Shipment, Order)
            .join(Order, Shipment.order_id == Order.id)
            .where(
                Order.shop_id == shop_id,
                Shipment.tracking_number != "",
                Shipment.status != "cancelled",
                Shipment.updated_at <= cutoff,
                or_(Shipment.written_tracking.is_(None), Shipment.written_tracking != written_key),
            )
            .order_by(Shipment.id)
        ).all()
        found = [
            (parcel.id, parcel.order_id, tracking_key(parcel), parcel.tracking_number, label(order))
            for parcel, order in rows
        ]
        refusals = {(order_id, number): _last_refusal(session, order_id, number) for _, order_id, _, number, _ in found}
    for shipment_id, order_id, key, number, name in found:
        report.add_missing("parcels_not_on_shop", name, f"parcel with tracking {number}")
        if refusals[(order_id, number)]:
            report.add_still_wrong(name, f"tracking {number} not on the shop", refusals[(order_id, number)])
        elif enqueue_write(runtime, shipment_id, order_id, key):
            report.add_repaired(name, f"tracking {number}: write to the shop enqueued again")
        else:
            report.add_still_wrong(name, f"tracking {number} not on the shop yet", "its write is queued or retrying")


def _last_refusal(session: Any, order_id: int, number: str) -> str:
    """The shop's refusal of this tracking, if the last word on it in the timeline is one."""
    reasons = session.scalars(
        select(OrderTransition.reason)
        .where(
            OrderTransition.order_id == order_id,
            OrderTransition.reason.contains(f"tracking {number}", autoescape=True),
        )
        .order_by(OrderTransition.id.desc())
        .limit(1)
    ).all()
    return reasons[0] if reasons and WRITE_REFUSED in reasons[0] else ""


# --- the provider ------------------------------------------------------------------------------
def check_provider(runtime: Runtime, shop_id: int, report: DriftReport) -> None:
    """Parcels the provider shipped that Relais never recorded, and pushed orders it lacks."""
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id)
        try:
            provider = provider_for(runtime, shop)
        except ConfigError as exc:  # no provider chosen yet, or one this deployment lacks
            report.notes.append(f"the provider's side was not checked: {merchant_text(exc)}")
            return
        after = sync_row(session, shop_id).provider_cursor or 0
        batch = session.execute(
            select(Order.id, Order.provider_reference, Order.provider_order_id)
            .where(
                Order.shop_id == shop_id,
                Order.state.in_((states.PUSHED, states.PARTIALLY_SHIPPED)),
                Order.provider_order_id.is_not(None),
                Order.id > after,
            )
            .order_by(Order.id)
            .limit(PROVIDER_BATCH)
        ).all()
    last = after
    try:
        for order_id, reference, provider_order_id in batch:
            ref = ProviderOrderRef(reference=reference or "", provider_order_id=provider_order_id)
            try:
                parcels = provider.shipments(ref)
            except NotFoundError as exc:
                name = _name(runtime, order_id, reference)
                report.add_missing("orders_missing_at_provider", name, f"provider order {provider_order_id}")
                report.add_still_wrong(name, "pushed, but the provider does not have it", merchant_text(exc))
                parcels = []
            report.checked["provider_orders"] += 1
            last = order_id
            _record(runtime, shop_id, report, parcels)
        if provider.acknowledges_tracking:
            found = provider.unacknowledged_shipments()
            report.checked["provider_orders"] += len({p.reference for p in found})
            _record(runtime, shop_id, report, found)
    except (RetryableError, AuthError, InvalidRequestError, ConfigError) as exc:
        report.notes.append(f"the provider check stopped early: {merchant_text(exc)}")
    with transaction(runtime.sessions) as session:
        # A short batch reached the end: the next run starts from the first pushed order again.
        sync_row(session, shop_id).provider_cursor = last if len(batch) == PROVIDER_BATCH else None


def _name(runtime: Runtime, order_id: int, reference: str | None) -> str:
    with runtime.sessions() as session:
        return label(session.get(Order, order_id), reference or "")


def _record(runtime: Runtime, shop_id: int, report: DriftReport, parcels: list[ParcelModel]) -> None:
    """Record each shipped parcel Relais lacks, as its webhook would have (then its tracking goes out)."""
    for parcel in parcels:
        kind = SHIPPED.get(parcel.status)
        if kind is None or not parcel.tracking_number:
            continue  # not shipped (pending, on hold, cancelled): nothing the shop should show yet
        tracking_jobs: list[str] = []
        with transaction(runtime.sessions) as session:
            shop = session.get(Shop, shop_id)
            order = find_order_for(session, shop, parcel.reference)
            if order is None:
                report.add_missing(
                    "orders_unknown_at_provider", parcel.reference, f"parcel {parcel.provider_shipment_id} shipped"
                )
                report.add_still_wrong(
                    parcel.reference,
                    f"shipped by the provider (parcel {parcel.provider_shipment_id})",
                    "no order in Relais has this reference: it was not pushed by Relais",
                )
                continue
            if order.state == states.PUSHING or any(
                s.provider_shipment_id == parcel.provider_shipment_id for s in order.shipments
            ):
                continue  # known already, or its push is still recording (the webhook path waits for it)
            name = label(order)
            event = ProviderEvent(
                delivery_id=f"reconcile:{parcel.provider_shipment_id}",
                kind=kind,
                event_time=parcel.event_time,
                shipment=parcel,
            )
            outcome = apply_provider_event(session, shop, event, None, tracking_jobs)  # type: ignore[arg-type]
            recorded = outcome.startswith("shipment ")
            if recorded:
                order_store.note(
                    order, f"parcel {parcel.provider_shipment_id} found by reconciliation: its webhook never arrived"
                )
        report.add_missing(
            "parcels_not_recorded", name, f"parcel {parcel.provider_shipment_id} ({parcel.tracking_number})"
        )
        if not recorded:  # the recorder refused it (say, another provider order than the one pushed)
            report.add_still_wrong(name, f"parcel {parcel.provider_shipment_id} not recorded", outcome)
            continue
        for shipment_id in tracking_jobs:
            with runtime.sessions() as session:
                row = session.get(Shipment, int(shipment_id))
                enqueue_write(runtime, row.id, row.order_id, tracking_key(row))
        then = "; tracking write enqueued" if tracking_jobs else ""
        report.add_repaired(name, f"parcel {parcel.provider_shipment_id} recorded ({outcome}){then}")
