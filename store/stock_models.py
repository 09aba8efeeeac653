"""The stock sync's tables: the shop's SKU map, what we believe the shop shows, and each sync run.

The SKU map is unique per platform item, not per SKU: SKUs are not unique on Shopify, and the
sync must see a duplicate to refuse it. A belief is one row per shop, location and SKU: the
quantity we last wrote (or read) and when, the basis of the next compare-and-set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, Id, utcnow


class SkuMapEntry(Base):
    """One item of the shop carrying a SKU, as the platform listed it."""

    __tablename__ = "stock_sku_map"
    __table_args__ = (
        # One row per item and shop location the map was read at (a mapping may target several).
        UniqueConstraint("shop_id", "item_id", "location_id", name="uq_stock_sku_map_shop_item_location"),
        Index("ix_stock_sku_map_shop_sku", "shop_id", "sku"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(255))
    item_id: Mapped[str] = mapped_column(String(128))
    managed: Mapped[bool] = mapped_column(Boolean, default=True)
    location_id: Mapped[str] = mapped_column(String(128), default="")  # where ``stocked`` was read
    stocked: Mapped[bool] = mapped_column(Boolean, default=False)
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)


class StockBelief(Base):
    """What we believe the shop shows for a SKU at a location: our last write or read, and when."""

    __tablename__ = "stock_beliefs"
    __table_args__ = (UniqueConstraint("shop_id", "location_id", "sku", name="uq_stock_beliefs_shop_location_sku"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    location_id: Mapped[str] = mapped_column(String(128))
    sku: Mapped[str] = mapped_column(String(255))
    item_id: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: our last write's outcome is unknown
    as_of: Mapped[datetime] = mapped_column(default=utcnow)
    written_at: Mapped[datetime | None] = mapped_column(nullable=True)  # None: only ever read
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class StockSyncRun(Base):
    """One sync of a shop: what it read, wrote and skipped (with why), for the report."""

    __tablename__ = "stock_sync_runs"
    __table_args__ = (Index("ix_stock_sync_runs_shop_started", "shop_id", "started_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16), default="cron")  # cron | cli
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | ok | failed
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    map_refreshed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)  # platform write requests
    read: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    written: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    skipped: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class StockExportRecord(Base):
    """A platform-side export of a shop's SKU map (Shopify: a bulk operation) that Relais started.

    Stored the moment it starts, so a worker restarted while it runs picks the same one up (never
    a second); ``status``: running | done | failed | abandoned, with the reason when not done.
    """

    __tablename__ = "stock_exports"
    __table_args__ = (Index("ix_stock_exports_shop_started", "shop_id", "started_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    location_id: Mapped[str] = mapped_column(String(128))
    export_id: Mapped[str] = mapped_column(String(128))  # the platform's id (a BulkOperation GID)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    items: Mapped[int | None] = mapped_column(Integer, nullable=True)  # map rows read from it
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
