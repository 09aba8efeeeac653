"""Per-shop sync bookkeeping, the same for every platform: the reconciliation cursors, the last
reconciliation's drift report, the last webhook check, and the last thing the merchant must be
told (keys refused, webhook disabled)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from store.models import Base, Id, utcnow


class ShopSync(Base):
    __tablename__ = "shop_sync"

    shop_id: Mapped[int] = mapped_column(
        Id, ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    orders_cursor: Mapped[datetime | None] = mapped_column(nullable=True)  # platform time, UTC
    reconciled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The last reconciliation's drift report (``jobs.drift.DriftReport.as_json``): what was missing on
    # each side, what the run repaired and what is still wrong, with why. One per shop: the latest.
    drift_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Last order id whose parcels were checked at the provider: each run checks the next batch.
    provider_cursor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    webhooks_checked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    notice: Mapped[str | None] = mapped_column(Text, nullable=True)
    notice_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def sync_row(session: Session, shop_id: int) -> ShopSync:
    """The shop's bookkeeping row, created on first use."""
    row = session.get(ShopSync, shop_id, with_for_update=True)
    if row is None:
        row = ShopSync(shop_id=shop_id)
        session.add(row)
        session.flush()
    return row


def tell_merchant(session: Session, shop_id: int, text: str) -> None:
    """Keep the latest thing the merchant must know (shown on the store's status page)."""
    row = sync_row(session, shop_id)
    row.notice = text
    row.notice_at = utcnow()
