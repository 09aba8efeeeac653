"""The tables: shops, the webhook inbox, orders with lines and history, attempts, shipments.

Every key that makes a repeat harmless is a unique constraint here, so the database (not a
look-then-insert) is what refuses the second copy. The schema runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_webhook_token() -> str:
    """An unguessable per-shop value naming the shop in its provider webhook URL
    (``/webhooks/fulfilment/<provider>/<token>``): a shop id there could be enumerated."""
    return secrets.token_urlsafe(24)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Shop(Base):
    """An installed store. Credentials are Fernet tokens (see ``store.crypto``), never plain text."""

    __tablename__ = "shops"
    __table_args__ = (UniqueConstraint("platform", "domain", name="uq_shops_platform_domain"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    domain: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default="active")  # active | uninstalled
    credentials_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    provider: Mapped[str] = mapped_column(String(32), default="")  # "": none yet, orders wait for one
    provider_options_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Routes provider deliveries that name no order reference of ours to this shop, in one lookup.
    webhook_token: Mapped[str] = mapped_column(String(64), unique=True, index=True, default=new_webhook_token)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """The inbox: one row per accepted delivery, committed before the webhook is acknowledged."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("source", "delivery_key", name="uq_webhook_events_delivery"),
        # One row per platform event: Shopify sends the same event (X-Shopify-Event-Id) once per
        # matching subscription, each with its own webhook id. NULL (no such header) never collides.
        UniqueConstraint("source", "shop_id", "event_key", name="uq_webhook_events_event"),
        Index("ix_webhook_events_status_received", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # shopify | woocommerce | sandbox | shipbob
    delivery_key: Mapped[str] = mapped_column(String(255))
    event_key: Mapped[str | None] = mapped_column(String(255), nullable=True)  # "<topic>:<X-Shopify-Event-Id>"
    shop_id: Mapped[int | None] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=True)
    topic: Mapped[str] = mapped_column(String(128))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(32), default="received")
    # received → enqueued → processed | ignored | failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Order(Base):
    """An order as Relais knows it: the last platform state applied and where it is in the pipeline."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "platform_order_id", name="uq_orders_shop_platform_id"),
        Index("ix_orders_state_updated", "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    platform_order_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(32), default="received")
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    platform_updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ship_to: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    shipping_method: Mapped[str] = mapped_column(String(255), default="")
    contact: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    tags: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    provider: Mapped[str] = mapped_column(String(32), default="")
    provider_reference: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    provider_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    push_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )
    history: Mapped[list[OrderTransition]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderTransition.id"
    )
    shipments: Mapped[list[Shipment]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Shipment.id"
    )
    attempts: Mapped[list[FulfilmentAttempt]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="FulfilmentAttempt.id"
    )


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    platform_line_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    requires_shipping: Mapped[bool] = mapped_column(Boolean, default=True)

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderTransition(Base):
    """One row per state change: the audit trail and the merchant's timeline."""

    __tablename__ = "order_transitions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_state: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    event_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="history")


class FulfilmentAttempt(Base):
    """Each call to the provider about an order, with its outcome (create, cancel, lookup)."""

    __tablename__ = "fulfilment_attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))  # ok | duplicate | retryable | invalid | auth | ...
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="attempts")


class Shipment(Base):
    """A parcel reported by the provider; unique per provider shipment id within a shop's orders."""

    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("order_id", "provider_shipment_id", name="uq_shipments_order_provider_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    provider_shipment_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default="shipped")
    carrier: Mapped[str] = mapped_column(String(64), default="")
    service: Mapped[str] = mapped_column(String(128), default="")
    tracking_number: Mapped[str] = mapped_column(String(128), default="")
    tracking_url: Mapped[str] = mapped_column(Text, default="")
    lines: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    event_time: Mapped[datetime | None] = mapped_column(nullable=True)
    platform_fulfilment_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    written_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # What the shop holds now: a later provider correction differs from it and is sent as an update.
    written_tracking: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # The parcel's units the shop accepted (lines not at our location are left out there).
    written_lines: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    order: Mapped[Order] = relationship(back_populates="shipments")


# Every table of the product lives on this one metadata so one migration history covers all.
from store import app_models as _app_models  # noqa: E402, F401
from store import edit_models as _edit_models  # noqa: E402, F401
from store import fulfilment_service_models as _fulfilment_service_models  # noqa: E402, F401
from store import stock_models as _stock_models  # noqa: E402, F401
from store import sync_models as _sync_models  # noqa: E402, F401
from store import woocommerce_models as _woocommerce_models  # noqa: E402, F401

# Credentials never reach a stored message (timeline, notices, audit, attempts): store/scrub.py.
from store.scrub import scrub_stored_messages  # noqa: E402

scrub_stored_messages(Base)
