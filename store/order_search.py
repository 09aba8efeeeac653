"""Finding one of a shop's orders from the merchant's page: by order name, customer name or
e-mail, SKU or tracking number, optionally in one state.

One bounded query, the same on SQLite and PostgreSQL: case-insensitive ``LIKE`` on lower-cased
text with the merchant's ``%``, ``_`` and ``\\`` escaped (what they type is matched literally), JSON
fields read through SQLAlchemy's portable JSON accessors. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from jobs import states
from store.models import Order, OrderLine, Shipment

LIMIT = 50  # a search answers a page, never the shop's whole history
MAX_QUERY = 100
ESCAPE = "\\"
STATES = (
    states.RECEIVED,
    states.HELD,
    states.READY,
    states.PUSHING,
    states.PUSHED,
    states.PARTIALLY_SHIPPED,
    states.SHIPPED,
    states.DELIVERED,
    states.CANCEL_REQUESTED,
    states.CANCELLED,
    states.CANCEL_TOO_LATE,
    states.PARTIALLY_CANCELLED,
    states.NO_SHIPPING,
    states.FAILED,
)


@dataclass(frozen=True)
class Search:
    text: str = ""
    state: str = ""

    @property
    def active(self) -> bool:
        return bool(self.text or self.state)


def parse(text: str | None, state: str | None) -> Search:
    """The merchant's query, trimmed and bounded; an unknown state is dropped rather than matched."""
    cleaned = " ".join((text or "").split())[:MAX_QUERY]
    return Search(text=cleaned, state=state if state in STATES else "")


def like_pattern(text: str) -> str:
    """``%text%`` with the wildcards the merchant typed escaped (a ``%`` or ``_`` matches itself)."""
    escaped = text.lower().replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    return f"%{escaped}%"


def search(session: Session, shop_id: int, query: Search, limit: int = LIMIT) -> list[int]:
    """Ids of the shop's orders matching ``query``, most recently changed first, at most ``limit``."""
    conditions = [Order.shop_id == shop_id]
    if query.state:
        conditions.append(Order.state == query.state)
    if query.text:
        pattern = like_pattern(query.text)

        def like(column):  # type: ignore[no-untyped-def]
            return func.lower(column).like(pattern, escape=ESCAPE)

        bare = query.text.lstrip("#")
        by_line = select(OrderLine.order_id).where(like(OrderLine.sku))
        by_parcel = select(Shipment.order_id).where(like(Shipment.tracking_number))
        conditions.append(
            or_(
                like(Order.name),
                func.lower(Order.platform_order_id) == bare.lower(),
                like(Order.ship_to["name"].as_string()),
                like(Order.contact["email"].as_string()),
                Order.id.in_(by_line),
                Order.id.in_(by_parcel),
            )
        )
    stmt = select(Order.id).where(*conditions).order_by(Order.updated_at.desc(), Order.id.desc()).limit(limit)
    return list(session.scalars(stmt))
