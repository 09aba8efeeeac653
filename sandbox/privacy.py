"""The sandbox's part of a redaction: the copies the simulated 3PL and the stand-in shop keep.

The simulated 3PL keeps each pushed order's recipient (name, address, e-mail, phone) in
``sandbox_orders``; the stand-in shop keeps the fulfilments written to each order in Redis
(``relais:sandbox-shop:{shop}:{order id}``, plus the shop's id counter and stock). Relais' own
redaction cannot know these tables and keys (product code never imports the sandbox), so
``sandbox.enable`` registers ``redact`` with ``jobs.privacy.register_redactor``.

A customer redaction blanks the recipient of every sandbox order under one of the customer's
references (or whose recipient names them) and drops the stand-in shop's records of their
orders; a shop redaction deletes every sandbox order under the shop's references and every
stand-in shop key of that shop. Local only, in the redaction's transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, inspect, select
from sqlalchemy.orm import Session

from integrations.fulfilment.reference import parse_reference
from jobs.redaction import Redaction, blank_address
from sandbox.models import SandboxLine, SandboxOrder, SandboxShipment

if TYPE_CHECKING:
    from jobs.runtime import Runtime


def redact(runtime: Runtime, session: Session, redaction: Redaction) -> None:
    """Remove the sandbox's copies covered by ``redaction`` (see the module's docstring)."""
    if redaction.kind == "shop":
        _forget_shop(runtime, session, redaction)
    else:
        _forget_customer(runtime, session, redaction)


def _of_shop(reference: str, shop_id: int) -> bool:
    parsed = parse_reference(reference)
    return parsed is not None and parsed[0] == shop_id


def _has_tables(session: Session) -> bool:
    """The sandbox creates its tables on first use: a database where it never ran has none."""
    return inspect(session.connection()).has_table(SandboxOrder.__tablename__)


def _forget_customer(runtime: Runtime, session: Session, redaction: Redaction) -> None:
    orders = session.scalars(select(SandboxOrder)) if _has_tables(session) else []
    for order in orders:
        if _base_reference(order.reference) in redaction.references or redaction.mentions(order.recipient):
            order.recipient = blank_address(order.recipient) or {}
            for line in order.lines:
                line.name = redaction.scrub(line.name)
    redis = runtime.redis
    if redis is not None:
        for order_id in redaction.platform_order_ids:
            redis.delete(_shop_key(redaction.shop_domain, order_id))


def _forget_shop(runtime: Runtime, session: Session, redaction: Redaction) -> None:
    rows = session.execute(select(SandboxOrder.id, SandboxOrder.reference)) if _has_tables(session) else []
    ids = [r.id for r in rows if _of_shop(r.reference, redaction.shop_id) or r.reference in redaction.references]
    if ids:
        for model in (SandboxShipment, SandboxLine):
            session.execute(delete(model).where(model.order_id.in_(ids)).execution_options(synchronize_session=False))
        session.execute(
            delete(SandboxOrder).where(SandboxOrder.id.in_(ids)).execution_options(synchronize_session=False)
        )
    redis = runtime.redis
    if redis is not None:
        for key in redis.scan_iter(match=_shop_key(_glob(redaction.shop_domain), "*"), count=500):
            redis.delete(key)


def _base_reference(reference: str) -> str:
    """``{shop}-{order}`` without a ``-g{n}`` generation suffix."""
    parsed = parse_reference(reference)
    return f"{parsed[0]}-{parsed[1]}" if parsed else reference


def _shop_key(shop: str, suffix: str) -> str:
    return f"relais:sandbox-shop:{shop}:{suffix}"


def _glob(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
