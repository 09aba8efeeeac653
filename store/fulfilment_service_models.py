"""Shopify fulfilment-service mode: the service Relais created on a shop, and the fulfilment
orders (FOs) Shopify assigned to its location.

One service per shop and provider account (its name says which), so a second install or a crash
between create and store finds it by name instead of creating another. An FO row is what Relais
last learnt of one FO and what it did about it (``state``), with the lines the provider was given:
the push sends exactly those lines, and the FO's id is the idempotency key of every answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, Id, utcnow


class FulfilmentService(Base):
    __tablename__ = "shopify_fulfilment_services"
    __table_args__ = (UniqueConstraint("shop_id", "name", name="uq_shopify_fulfilment_services_shop_name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))  # serviceName on Shopify, unique per shop there too
    service_id: Mapped[str] = mapped_column(String(128))  # gid://shopify/FulfillmentService/…
    location_id: Mapped[str] = mapped_column(String(128))  # gid://shopify/Location/… Shopify made for it
    callback_url: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Relais' view of one FO, whatever Shopify's own status says (that is kept beside it).
FO_STATES = (
    "requested",  # a fulfilment request is waiting for us
    "accepted",  # the provider has its lines; Shopify was told
    "rejected",  # the provider refused them; Shopify was told why
    "cancellation_requested",
    "cancelled",  # cancelled at the provider; Shopify's cancellation request accepted
    "cancellation_rejected",  # already shipped (in part); Shopify was told
    "on_hold",
    "moved_away",  # no longer at our location
    "closed",
)


class FulfilmentOrderRow(Base):
    __tablename__ = "shopify_fulfilment_orders"
    __table_args__ = (UniqueConstraint("shop_id", "fulfilment_order_id", name="uq_shopify_fulfilment_orders_shop_fo"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), nullable=True, index=True)
    fulfilment_order_id: Mapped[str] = mapped_column(String(128))
    platform_order_id: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(128), default="")
    shopify_status: Mapped[str] = mapped_column(String(32), default="")
    request_status: Mapped[str] = mapped_column(String(32), default="")
    state: Mapped[str] = mapped_column(String(32), default="requested")
    # [{fo_line_id, line_item_id, sku, quantity}] — what the provider is (to be) given for this FO.
    lines: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
