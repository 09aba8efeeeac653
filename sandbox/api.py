"""The sandbox fulfilment centre's HTTP API: a simulated 3PL that Relais speaks to over HTTP.

It exists so that a fresh machine runs end to end with no outside account; Relais reaches it
through ``sandbox.provider`` exactly as it reaches a real provider. It is shaped on
ShipBob (reference/fulfilment.md A.1): bearer-token auth, a unique order reference as the
idempotency key, parcels (shipments) that ship on their own, Standard Webhooks on shipping.

Auth: ``Authorization: Bearer <token>``; any non-empty token is an account of its own (its own
orders and stock), stored as the token's SHA-256. No token → 401. Each account signs its
webhooks with its own secret (``sandbox.accounts``).

Endpoints (under ``/sandbox``, JSON in and out):

- ``POST /api/orders`` — body ``reference``, ``shipping_method``, ``recipient{name, address1,
  address2, city, province_code, zip, country_code, phone, email}``, ``lines[{sku, name,
  quantity, line_id}]``. Required: reference, shipping_method, recipient name/address1/city/
  country_code (2 letters), at least one line with sku and quantity ≥ 1. 201 → the order;
  422 → ``{"errors": {field: [message]}}``; a reference seen before → 409 ``{"error":
  "duplicate_reference", "order_id": id}``. Unknown SKUs are accepted and stocked with
  ``NEW_SKU_STOCK`` (100) on hand; stock never blocks an order. The order gets one parcel, or two
  when it has ≥ 2 lines and the recipient's name contains "split" (first half of the lines, then
  the rest), and ``sandbox.jobs.ship_order`` is scheduled ``SANDBOX_SHIP_DELAY`` seconds later.
- ``GET /api/orders?reference=R`` — ``{"orders": [...]}`` (0 or 1 order; without ``reference``
  the 100 newest).
- ``GET /api/orders/<id>`` — the order with ``status`` (processing | partially_shipped | shipped |
  delivered | cancelled) and ``shipments[{id, status, carrier, service, tracking_number,
  tracking_url, lines[{sku, quantity}], shipped_at, delivered_at, cancelled_at}]``.
- ``POST /api/orders/<id>/cancel`` — each parcel still processing is cancelled and its stock
  released; ``{"status": "cancelled" | "too_late" | "partial", "shipments": [{id, cancelled,
  reason}]}``.
- ``GET /api/inventory`` — ``{"items": [{sku, location: "SANDBOX-1", on_hand, committed,
  fulfillable}]}``, fulfillable = on_hand − committed (never below 0), in SKU order. With
  ``?limit=n`` (at most 1000) and ``after=<sku>``: one page, and ``next`` (null on the last page).
- ``GET /api/locations`` — ``{"locations": [{id: "SANDBOX-1", name}]}``: its one warehouse.
- ``PUT /api/inventory/<sku>`` — ``{"on_hand": n}`` sets the stock (demo and tests).
- ``POST /api/faults`` — ``{"fail_next": n, "status": 429|500|502|503|422|401|403,
  "retry_after": s}``: the account's next n calls (other than this one) answer that status
  instead of running; 429 carries ``Retry-After``/``x-retry-after`` and ShipBob's body.
  ``{"slow_next": n, "delay": d}``: the next n calls run, then answer d seconds late (d at most
  ``faults.MAX_DELAY``; a client timeout on a create that did happen, with a provider timeout
  below d). 0 clears. Details in ``sandbox.faults``.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from jobs.runtime import Runtime
from sandbox import ensure_tables, faults
from sandbox.accounts import account_of
from sandbox.jobs import schedule
from sandbox.models import (
    SandboxLine,
    SandboxOrder,
    SandboxShipment,
    SandboxStock,
    commit_stock,
    ensure_stock,
    release_stock,
)
from sandbox.validation import RECIPIENT_FIELDS, is_int, text, validate_order
from store.db import transaction
from store.models import utcnow

blueprint = Blueprint("sandbox", __name__)

LOCATION = "SANDBOX-1"
LOCATION_NAME = "Sandbox warehouse"
INVENTORY_PAGE_MAX = 1000  # stock rows per page of ``GET /api/inventory?limit=``


def _runtime() -> Runtime:
    return current_app.extensions["relais"]


@blueprint.before_request
def _authenticate() -> Response | tuple[Response, int] | None:
    """Identify the account; answer an injected failure instead of the call when one is pending."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return jsonify(error="unauthorized", message="send Authorization: Bearer <token>"), 401
    g.sandbox_account = account_of(token.strip())
    ensure_tables(_runtime().engine)  # the sandbox's own tables, made on first use
    if request.endpoint == "sandbox.set_faults":
        return None
    client = _runtime().redis
    failure = faults.pop(client, "fail", g.sandbox_account)
    if failure is not None:
        return faults.failure_response(failure)
    g.sandbox_slow = faults.pop(client, "slow", g.sandbox_account)
    return None


@blueprint.after_request
def _slow_down(response: Response) -> Response:
    """An injected slow answer: the work is done (and committed) before the caller hears of it."""
    slow = g.get("sandbox_slow")
    if slow:
        time.sleep(float(slow["delay"]))
    return response


@blueprint.post("/api/faults")
def set_faults() -> Response | tuple[Response, int]:
    """Set this account's pending faults (see ``sandbox.faults``)."""
    body = request.get_json(silent=True)
    errors, lists = faults.validate(body)
    if errors:
        return jsonify(errors=errors), 422
    faults.store(_runtime().redis, g.sandbox_account, lists)
    return jsonify({kind: len(entries) for kind, entries in lists.items()})


def _parcels(recipient_name: str, lines: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """One parcel, or two when asked for by a recipient name containing "split" (demo and tests)."""
    if len(lines) >= 2 and "split" in recipient_name.lower():
        half = (len(lines) + 1) // 2
        return [lines[:half], lines[half:]]
    return [lines]


def _duplicate(order_id: int) -> tuple[Response, int]:
    return jsonify(error="duplicate_reference", order_id=order_id), 409


def _find_id(runtime: Runtime, account: str, reference: str) -> int | None:
    with transaction(runtime.sessions) as session:
        return session.scalar(
            select(SandboxOrder.id).where(SandboxOrder.account == account, SandboxOrder.reference == reference)
        )


@blueprint.post("/api/orders")
def create_order() -> tuple[Response, int]:
    body = request.get_json(silent=True)
    errors = validate_order(body)
    if errors:
        return jsonify(errors=errors), 422
    runtime, account = _runtime(), g.sandbox_account
    reference = text(body["reference"])
    existing = _find_id(runtime, account, reference)
    if existing is not None:
        return _duplicate(existing)
    recipient = {f: text(body["recipient"].get(f)) for f in RECIPIENT_FIELDS}
    recipient["country_code"] = recipient["country_code"].upper()
    lines = [
        {
            "line_id": text(ln.get("line_id")),
            "sku": text(ln["sku"]),
            "name": text(ln.get("name")),
            "quantity": ln["quantity"],
        }
        for ln in body["lines"]
    ]
    try:
        with transaction(runtime.sessions) as session:
            order = SandboxOrder(
                account=account,
                reference=reference,
                shipping_method=text(body["shipping_method"]),
                recipient=recipient,
                lines=[SandboxLine(**ln) for ln in lines],
            )
            for position, parcel in enumerate(_parcels(recipient["name"], lines), start=1):
                parcel_lines = [{"sku": ln["sku"], "quantity": ln["quantity"]} for ln in parcel]
                order.shipments.append(SandboxShipment(position=position, lines=parcel_lines))
            commit_stock(session, account, lines)  # once for all parcels: one lock order per order
            session.add(order)
            session.flush()
            order_id, payload = order.id, order.as_json()
    except IntegrityError:
        # A concurrent create with the same reference won the unique constraint.
        existing = _find_id(runtime, account, reference)
        if existing is None:
            raise
        return _duplicate(existing)
    schedule(runtime, 1, "sandbox.jobs.ship_order", order_id)
    return jsonify(payload), 201


@blueprint.get("/api/orders")
def list_orders() -> Response:
    query = select(SandboxOrder).where(SandboxOrder.account == g.sandbox_account)
    reference = request.args.get("reference")
    if reference is not None:
        query = query.where(SandboxOrder.reference == reference)
    with transaction(_runtime().sessions) as session:
        orders = session.scalars(query.order_by(SandboxOrder.id.desc()).limit(100)).all()
        return jsonify(orders=[order.as_json() for order in orders])


def _load(session: Any, order_id: int) -> SandboxOrder | None:
    order = session.get(SandboxOrder, order_id)
    return order if order is not None and order.account == g.sandbox_account else None


@blueprint.get("/api/orders/<int:order_id>")
def get_order(order_id: int) -> Response | tuple[Response, int]:
    with transaction(_runtime().sessions) as session:
        order = _load(session, order_id)
        if order is None:
            return jsonify(error="not_found"), 404
        return jsonify(order.as_json())


@blueprint.post("/api/orders/<int:order_id>/cancel")
def cancel_order(order_id: int) -> Response | tuple[Response, int]:
    """Cancel every parcel still processing; shipped ones stay shipped (reason given per parcel)."""
    with transaction(_runtime().sessions) as session:
        order = _load(session, order_id)
        if order is None:
            return jsonify(error="not_found"), 404
        results = []
        for shipment in order.shipments:
            # Claimed by a conditional update: the ship job claims the same row the same way.
            claimed = session.execute(
                update(SandboxShipment)
                .where(SandboxShipment.id == shipment.id, SandboxShipment.status == "processing")
                .values(status="cancelled", cancelled_at=utcnow(), cancel_reason="cancelled on request")
                .execution_options(synchronize_session=False)
            ).rowcount
            session.refresh(shipment)
            if claimed:
                release_stock(session, order.account, shipment.lines)
                results.append({"id": shipment.id, "cancelled": True, "reason": ""})
            elif shipment.status == "cancelled":
                results.append({"id": shipment.id, "cancelled": True, "reason": "already cancelled"})
            else:
                results.append({"id": shipment.id, "cancelled": False, "reason": f"already {shipment.status}"})
    done = sum(r["cancelled"] for r in results)
    status = "cancelled" if done == len(results) else "too_late" if done == 0 else "partial"
    return jsonify(status=status, shipments=results)


def _stock_json(sku: str, on_hand: int, committed: int) -> dict[str, Any]:
    return {
        "sku": sku,
        "location": LOCATION,
        "on_hand": on_hand,
        "committed": committed,
        "fulfillable": max(on_hand - committed, 0),
    }


@blueprint.get("/api/inventory")
def inventory() -> Response:
    """The account's stock in SKU order; with ``limit``, one page of it after the SKU ``after``,
    and ``next`` (the SKU to ask after, null on the last page): a large warehouse is read page
    by page, never built into one answer."""
    limit = request.args.get("limit", type=int)
    after = request.args.get("after", "")
    columns = (SandboxStock.sku, SandboxStock.on_hand, SandboxStock.committed)
    stmt = select(*columns).where(SandboxStock.account == g.sandbox_account).order_by(SandboxStock.sku)
    if after:
        stmt = stmt.where(SandboxStock.sku > after)
    if limit is not None:
        stmt = stmt.limit(max(1, min(limit, INVENTORY_PAGE_MAX)) + 1)
    with _runtime().sessions() as session:
        rows = session.execute(stmt).all()
    more = limit is not None and len(rows) > max(1, min(limit, INVENTORY_PAGE_MAX))
    rows = rows[:-1] if more else rows
    items = [_stock_json(sku, on_hand, committed) for sku, on_hand, committed in rows]
    if limit is None:
        return jsonify(items=items)
    return jsonify(items=items, next=rows[-1][0] if more else None)


@blueprint.get("/api/locations")
def locations() -> Response:
    return jsonify(locations=[{"id": LOCATION, "name": LOCATION_NAME}])


@blueprint.put("/api/inventory/<path:sku>")
def set_stock(sku: str) -> Response | tuple[Response, int]:
    on_hand = (request.get_json(silent=True) or {}).get("on_hand")
    if not is_int(on_hand) or on_hand < 0:
        return jsonify(errors={"on_hand": ["must be a whole number of at least 0"]}), 422
    account = g.sandbox_account
    with transaction(_runtime().sessions) as session:
        ensure_stock(session, account, [sku])
        session.execute(
            update(SandboxStock).where(SandboxStock.account == account, SandboxStock.sku == sku).values(on_hand=on_hand)
        )
        row = session.scalars(
            select(SandboxStock).where(SandboxStock.account == account, SandboxStock.sku == sku)
        ).one()
        return jsonify(_stock_json(row.sku, row.on_hand, row.committed))


# The order edit route (``PUT /api/orders/<id>``) lives in its own module, on this blueprint.
from sandbox import edits as _edits  # noqa: E402, F401
