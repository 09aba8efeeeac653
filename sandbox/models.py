"""Tables of the built-in sandbox fulfilment centre (``sandbox.api``, ``sandbox.jobs``).

The sandbox is a simulated 3PL living in the same database as Relais so that a fresh machine runs
end to end with no outside account. Its tables are its own (prefixed ``sandbox_``); Relais' pipeline
never reads them, it only speaks to the sandbox over HTTP like to any provider. An account is the
SHA-256 of its bearer token: the raw token is never stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, case, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from store.models import Id, utcnow


class SandboxBase(DeclarativeBase):
    """The sandbox's own metadata: its tables are created by ``sandbox.enable`` in development only,
    never by Relais' migrations, so a production database holds none of them."""


class SandboxOrder(SandboxBase):
    """An order the sandbox accepted; ``reference`` is unique per account (the idempotency key)."""

    __tablename__ = "sandbox_orders"
    __table_args__ = (UniqueConstraint("account", "reference", name="uq_sandbox_orders_account_reference"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))  # sha256 hex of the bearer token
    reference: Mapped[str] = mapped_column(String(128))
    shipping_method: Mapped[str] = mapped_column(String(255))
    recipient: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    lines: Mapped[list[SandboxLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="SandboxLine.id"
    )
    shipments: Mapped[list[SandboxShipment]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="SandboxShipment.position"
    )

    def as_json(self) -> dict[str, Any]:
        """The order as the sandbox API answers it (``GET /sandbox/api/orders/<id>``)."""
        return {
            "id": self.id,
            "reference": self.reference,
            "status": self.status,
            "shipping_method": self.shipping_method,
            "recipient": self.recipient,
            "lines": [
                {"line_id": ln.line_id, "sku": ln.sku, "name": ln.name, "quantity": ln.quantity} for ln in self.lines
            ],
            "shipments": [shipment.as_json() for shipment in self.shipments],
            "created_at": iso(self.created_at),
        }

    @property
    def status(self) -> str:
        """Derived from the parcels, so it can never disagree with them."""
        states = {s.status for s in self.shipments}
        live = states - {"cancelled"}
        if not live:
            return "cancelled"
        if "processing" in live:
            return "partially_shipped" if live & {"shipped", "delivered"} else "processing"
        return "delivered" if live == {"delivered"} else "shipped"


class SandboxLine(SandboxBase):
    __tablename__ = "sandbox_lines"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sandbox_orders.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[str] = mapped_column(String(64), default="")
    sku: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    quantity: Mapped[int] = mapped_column(Integer)

    order: Mapped[SandboxOrder] = relationship(back_populates="lines")


class SandboxShipment(SandboxBase):
    """A parcel: created ``processing`` with the order, then ``shipped``/``delivered`` or ``cancelled``.

    Each state change is claimed by a conditional UPDATE on ``status``, so a cancel racing the
    ship job ends with exactly one winner. ``*_notified_at`` record that the webhook for that state
    was acknowledged, which is what lets a retried job resend it and a repeated job do nothing.
    """

    __tablename__ = "sandbox_shipments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sandbox_orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(32), default="processing")
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"sku", "quantity"}]
    carrier: Mapped[str] = mapped_column(String(64), default="")
    service: Mapped[str] = mapped_column(String(128), default="")
    tracking_number: Mapped[str] = mapped_column(String(64), default="")
    tracking_url: Mapped[str] = mapped_column(String(512), default="")
    cancel_reason: Mapped[str] = mapped_column(String(255), default="")
    shipped_at: Mapped[datetime | None] = mapped_column(nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    shipped_notified_at: Mapped[datetime | None] = mapped_column(nullable=True)
    delivered_notified_at: Mapped[datetime | None] = mapped_column(nullable=True)

    order: Mapped[SandboxOrder] = relationship(back_populates="shipments")

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "carrier": self.carrier,
            "service": self.service,
            "tracking_number": self.tracking_number,
            "tracking_url": self.tracking_url,
            "lines": [{"sku": ln["sku"], "quantity": ln["quantity"]} for ln in self.lines],
            "shipped_at": iso(self.shipped_at),
            "delivered_at": iso(self.delivered_at),
            "cancelled_at": iso(self.cancelled_at),
        }


class SandboxStock(SandboxBase):
    """Stock of one SKU at the sandbox's single location; ``committed`` is held by open parcels."""

    __tablename__ = "sandbox_stock"
    __table_args__ = (UniqueConstraint("account", "sku", name="uq_sandbox_stock_account_sku"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(255))
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    committed: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# Stock arithmetic. Every change is one UPDATE with the arithmetic in SQL, so concurrent requests
# and jobs never lose each other's changes; quantities are clamped at zero rather than going
# negative, because the sandbox never refuses an order for want of stock (it is a simulator, and a
# fresh demo must ship).

#: on_hand of a SKU the sandbox sees for the first time (in an order or a PUT): a fresh machine's
#: demo then shows stock to sync instead of marking every product sold out.
NEW_SKU_STOCK = 100


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which are UTC here."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ensure_stock(session: Session, account: str, skus: Iterable[str]) -> None:
    """Create missing stock rows (``NEW_SKU_STOCK`` on hand); a concurrent insert is not an error."""
    rows = [{"account": account, "sku": sku, "on_hand": NEW_SKU_STOCK, "committed": 0} for sku in sorted(set(skus))]
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(SandboxStock).values(rows).on_conflict_do_nothing(index_elements=["account", "sku"])
    session.execute(stmt)


def _quantities(lines: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Quantity per SKU, in SKU order: rows are always locked in the same order, so two
    transactions touching the same SKUs cannot deadlock on PostgreSQL."""
    totals: Counter[str] = Counter()
    for line in lines:
        totals[line["sku"]] += int(line["quantity"])
    return sorted(totals.items())


def commit_stock(session: Session, account: str, lines: Iterable[Mapping[str, Any]]) -> None:
    """Hold stock for a new parcel."""
    totals = _quantities(lines)
    ensure_stock(session, account, [sku for sku, _ in totals])
    for sku, quantity in totals:
        session.execute(
            update(SandboxStock)
            .where(SandboxStock.account == account, SandboxStock.sku == sku)
            .values(committed=SandboxStock.committed + quantity)
        )


def release_stock(session: Session, account: str, lines: Iterable[Mapping[str, Any]]) -> None:
    """Give back what a cancelled parcel held."""
    for sku, quantity in _quantities(lines):
        session.execute(
            update(SandboxStock)
            .where(SandboxStock.account == account, SandboxStock.sku == sku)
            .values(committed=_minus(SandboxStock.committed, quantity))
        )


def consume_stock(session: Session, account: str, lines: Iterable[Mapping[str, Any]]) -> None:
    """A parcel left the warehouse: what it held leaves both on_hand and committed."""
    for sku, quantity in _quantities(lines):
        session.execute(
            update(SandboxStock)
            .where(SandboxStock.account == account, SandboxStock.sku == sku)
            .values(
                on_hand=_minus(SandboxStock.on_hand, quantity),
                committed=_minus(SandboxStock.committed, quantity),
            )
        )


def _minus(column: Any, quantity: int) -> Any:
    return case((column >= quantity, column - quantity), else_=0)
