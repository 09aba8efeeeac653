"""Write one parcel's tracking to a WooCommerce order, exactly once.

Where it goes depends on what the store runs, read from ``GET /wp-json/`` namespaces:
- the Shipment Tracking extension (``wc-shipment-tracking/v3``): one tracking entry, with the
  provider's own name when it is on the store's ``/providers`` list, else the custom fields;
- Advanced Shipment Tracking (``wc-ast/v3``): the same path shape and fields;
- neither: a customer note with the carrier, number and link (WooCommerce emails it).
Then, in both cases, one ``PUT /orders/<id>``: our meta ``relais_tracking`` (every parcel we
wrote: number, carrier, link, SKUs) and, once every shippable unit is in a parcel, status
``completed`` (the "Completed order" email; the extension prints tracking into it).

Idempotent at each step: an entry or note carrying the number is reused, a number already in
our meta is not added twice, and an order already completed, cancelled or refunded keeps its
status. A create whose answer was lost raises ``RetryableError``; the retry finds it by number.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.carriers import Tracking, clean_number, resolve
from integrations.model import Shipment
from integrations.platforms import TrackingWrite
from integrations.woocommerce.client import WooClient
from integrations.woocommerce.orders import PICKUP_METHODS

META_KEY = "relais_tracking"
SHIPMENT_TRACKING = "wc-shipment-tracking/v3"
AST = "wc-ast/v3"
FINAL_STATUSES = frozenset({"completed", "cancelled", "refunded", "trash", "failed"})


def tracking_namespace(namespaces: Iterable[str]) -> str | None:
    """The tracking plugin to write through, the official extension first."""
    available = set(namespaces)
    return next((ns for ns in (SHIPMENT_TRACKING, AST) if ns in available), None)


def slug(name: str) -> str:
    # sanitize_title, near enough for provider names: "Royal Mail" → "royal-mail"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def provider_name(providers: Mapping[str, Mapping[str, str]], company: str) -> str | None:
    """The store's spelling of ``company`` in ``/providers`` (by name or slug), or None."""
    wanted = slug(company)
    for region in providers.values():
        for name in region:
            if wanted and slug(name) == wanted:
                return name
    return None


def _recorded(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    for meta in order.get("meta_data") or []:
        if meta.get("key") == META_KEY and isinstance(meta.get("value"), list):
            return [entry for entry in meta["value"] if isinstance(entry, dict)]
    return []


def fully_shipped(order: Mapping[str, Any], parcels: list[dict[str, Any]], lines: Iterable[Mapping[str, Any]]) -> bool:
    """Every unit of the order's shippable ``lines`` is in one of ``parcels`` (a parcel without
    lines counts as the whole order; a local-pickup order has nothing to wait for)."""
    methods = [m.get("method_id") or "" for m in order.get("shipping_lines") or []]
    if methods and all(m.startswith(PICKUP_METHODS) for m in methods):
        return True
    needed: Counter[str] = Counter()
    for line in lines:
        needed[str(line.get("sku") or "")] += int(line.get("quantity") or 0)
    sent: Counter[str] = Counter()
    for parcel in parcels:
        if not parcel.get("lines"):
            return True
        for sku, qty in parcel["lines"]:
            sent[sku] += int(qty)
    return all(sent[sku] >= qty for sku, qty in needed.items())


def write_tracking(
    client: WooClient,
    order_id: str,
    shipment: Shipment,
    lines: Iterable[Mapping[str, Any]],
    *,
    namespace: str | None,
    providers: Mapping[str, Mapping[str, str]],
    customer_note: bool = True,
    complete: bool = True,
    replaces: str = "",
) -> tuple[TrackingWrite, dict[str, Any] | None]:
    """Record the parcel on the order; returns what was written and the order as we last saved it
    (None when nothing needed saving). ``replaces``: the tracking entry of a correction."""
    order = client.get(f"orders/{order_id}")
    postcode = str((order.get("shipping") or {}).get("postcode") or "")
    tracking = resolve(shipment.carrier, shipment.tracking_number, shipment.tracking_url, postcode)
    if namespace:
        written = _tracking_entry(client, order_id, tracking, namespace, providers, replaces)
    else:
        written = _customer_note(client, order_id, tracking, customer_note, correction=bool(replaces))
    entry = {
        "parcel": shipment.provider_shipment_id,
        "number": tracking.number,
        "carrier": tracking.company,
        "url": tracking.url,
        "shipped_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lines": [[line.sku, line.quantity] for line in shipment.lines],
    }
    parcels = _recorded(order)
    changes: dict[str, Any] = {}
    mine = next((p for p in parcels if p.get("parcel") == entry["parcel"]), None)
    if mine is None:
        parcels.append(entry)
        changes["meta_data"] = [{"key": META_KEY, "value": parcels}]
    elif any(mine.get(k) != entry[k] for k in ("number", "carrier", "url")):
        mine.update(number=entry["number"], carrier=entry["carrier"], url=entry["url"])
        changes["meta_data"] = [{"key": META_KEY, "value": parcels}]
    if complete and order.get("status") not in FINAL_STATUSES and fully_shipped(order, parcels, lines):
        changes["status"] = "completed"
    saved = client.put(f"orders/{order_id}", changes) if changes else None
    return written, saved


def _tracking_entry(
    client: WooClient,
    order_id: str,
    tracking: Tracking,
    namespace: str,
    providers: Mapping[str, Mapping[str, str]],
    replaces: str,
) -> TrackingWrite:
    path = f"orders/{order_id}/shipment-trackings"
    existing = client.get(path, namespace=namespace) or []
    for entry in existing:
        if clean_number(str(entry.get("tracking_number") or "")) == tracking.number:
            return TrackingWrite(platform_fulfilment_id=str(entry.get("tracking_id")), created=False)
    if replaces and any(str(e.get("tracking_id")) == replaces for e in existing):
        # The extension has no update: a correction replaces the entry.
        client.delete(f"{path}/{replaces}", namespace=namespace)
    body: dict[str, Any] = {"tracking_number": tracking.number, "date_shipped": datetime.now(UTC).strftime("%Y-%m-%d")}
    name = provider_name(providers, tracking.company) if tracking.company else None
    if name:
        body["tracking_provider"] = name
    else:
        body["custom_tracking_provider"] = tracking.company or "Carrier"
        body["custom_tracking_link"] = tracking.url
    if namespace == AST:
        body.update(status_shipped=0, replace_tracking=0)  # the status is ours to set, once, below
    created = client.post(path, body, namespace=namespace)
    return TrackingWrite(platform_fulfilment_id=str(created.get("tracking_id")), created=True)


def note_text(tracking: Tracking) -> str:
    carrier = tracking.company or "the carrier"
    text = f"Your order has shipped with {carrier}. Tracking number: {tracking.number}."
    return text + (f" Follow your parcel: {tracking.url}" if tracking.url else "")


def _customer_note(
    client: WooClient, order_id: str, tracking: Tracking, customer_note: bool, correction: bool
) -> TrackingWrite:
    path = f"orders/{order_id}/notes"
    for note in client.get(path, {"type": "any"}) or []:
        if tracking.number and tracking.number in str(note.get("note") or ""):
            return TrackingWrite(platform_fulfilment_id=f"note-{note.get('id')}", created=False)
    text = ("Tracking corrected. " if correction else "") + note_text(tracking)
    created = client.post(path, {"note": text, "customer_note": customer_note})
    return TrackingWrite(platform_fulfilment_id=f"note-{created.get('id')}", created=True)
