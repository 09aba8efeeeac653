"""What the provider holds of an order (the snapshot sent), and each edit applied after the push.

An order row always carries the platform's latest view; the provider keeps what we sent it. The
two differ after an edit on the shop (a corrected address, a line removed), and only the snapshot
says what the provider has, so it is written in the same transaction that records a successful
create or update. ``OrderEdit`` rows are the resumable state of one edit: which step it reached
(``cancelling`` the old provider order, ``recreating`` it under a new reference) and how it ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, Id, utcnow


class SentSnapshot(Base):
    """The address and lines the provider holds for the order, under ``reference``."""

    __tablename__ = "order_sent_snapshots"

    order_id: Mapped[int] = mapped_column(
        Id, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    reference: Mapped[str] = mapped_column(String(128))
    ship_to: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{platform_line_id, sku, quantity, name}]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OrderEdit(Base):
    """One edit after push: ``status`` open (``updating`` | ``cancelling`` | ``recreating``) or
    closed (``applied`` | ``recreated`` | ``held``), with the references it moved between."""

    __tablename__ = "order_edits"
    __table_args__ = (Index("ix_order_edits_order_status", "order_id", "status"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32))
    changes: Mapped[str] = mapped_column(Text, default="")  # the diff, as the timeline says it
    old_reference: Mapped[str] = mapped_column(String(128), default="")
    old_provider_order_id: Mapped[str] = mapped_column(String(64), default="")
    new_reference: Mapped[str] = mapped_column(String(128), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
