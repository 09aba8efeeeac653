"""The sandbox 3PL's order edit: ``PUT /sandbox/api/orders/<id>`` changes the recipient and/or the
lines of an order while every parcel is still processing, and refuses once one has left.

Body: ``{"recipient": {...}, "lines": [...]}`` (either or both, the same shapes as the create).
200 → the order; 422 → ``{"errors": {field: [message]}}``; 409 → ``{"error": "not_editable",
"message": …}`` when a parcel is no longer processing (picked up by the ship job, or cancelled).
Setting the same values twice changes nothing more, as a repeated edit must. New lines replace the
old ones as a whole (their parcels are made again, stock released and held again), like ShipBob's
``updateLineItems`` ("partial updates are not supported").
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import delete, func, select

from sandbox.api import _load, _parcels, _runtime, blueprint
from sandbox.models import SandboxLine, SandboxShipment, commit_stock, release_stock
from sandbox.validation import RECIPIENT_FIELDS, text, validate_order
from store.db import transaction


class _Refused(Exception):
    """A parcel left processing while the edit ran: nothing is changed."""


def _not_editable(message: str) -> tuple[Response, int]:
    return jsonify(error="not_editable", message=message), 409


@blueprint.put("/api/orders/<int:order_id>")
def edit_order(order_id: int) -> Response | tuple[Response, int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not ({"recipient", "lines"} & set(body)):
        return jsonify(errors={"body": ["must carry recipient and/or lines"]}), 422
    try:
        with transaction(_runtime().sessions) as session:
            order = _load(session, order_id)
            if order is None:
                return jsonify(error="not_found"), 404
            current = {
                "reference": order.reference,
                "shipping_method": order.shipping_method,
                "recipient": order.recipient,
                "lines": [{"sku": ln.sku, "name": ln.name, "quantity": ln.quantity} for ln in order.lines],
            }
            merged = {**current, **{k: body[k] for k in ("recipient", "lines") if k in body}}
            errors = validate_order(merged)
            if errors:
                return jsonify(errors=errors), 422
            left = [s for s in order.shipments if s.status != "processing"]
            if left:
                return _not_editable(f"parcel {left[0].position} is already {left[0].status}")
            if "recipient" in body:
                recipient = {f: text(body["recipient"].get(f)) for f in RECIPIENT_FIELDS}
                recipient["country_code"] = recipient["country_code"].upper()
                order.recipient = recipient
            if "lines" in body:
                _replace_lines(session, order, body["lines"])
            session.flush()
            return jsonify(order.as_json())
    except _Refused as exc:
        return _not_editable(str(exc))


def _replace_lines(session: Any, order: Any, raw_lines: list[dict[str, Any]]) -> None:
    """New lines and parcels; the old parcels are deleted only if all are still processing."""
    old_parcels = list(order.shipments)
    parcels = len(old_parcels)
    for shipment in old_parcels:
        release_stock(session, order.account, shipment.lines)
    removed = session.execute(
        delete(SandboxShipment)
        .where(SandboxShipment.order_id == order.id, SandboxShipment.status == "processing")
        .execution_options(synchronize_session=False)
    ).rowcount
    if removed != parcels:
        raise _Refused("a parcel left the warehouse during the edit")
    leftover = session.scalar(select(func.count()).where(SandboxShipment.order_id == order.id))
    if leftover:
        raise _Refused("a parcel left the warehouse during the edit")
    for shipment in old_parcels:  # deleted in SQL above: the session must forget them too
        session.expunge(shipment)
    session.expire(order, ["shipments"])
    lines = [
        {
            "line_id": text(ln.get("line_id")),
            "sku": text(ln["sku"]),
            "name": text(ln.get("name")),
            "quantity": ln["quantity"],
        }
        for ln in raw_lines
    ]
    order.lines = [SandboxLine(**ln) for ln in lines]
    for position, parcel in enumerate(_parcels(order.recipient.get("name", ""), lines), start=1):
        parcel_lines = [{"sku": ln["sku"], "quantity": ln["quantity"]} for ln in parcel]
        order.shipments.append(SandboxShipment(position=position, lines=parcel_lines))
    commit_stock(session, order.account, lines)
