"""Tables of the installable app: the audit log and the customer data exports.

The audit log names the shop by id and domain without a foreign key: after ``shop/redact`` deletes
everything of a shop, one entry saying that it was done must outlive it (with no personal data).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, Id, utcnow


class AuditEntry(Base):
    """Something that happened to a shop that someone may have to account for later: installs,
    token refreshes, uninstall, privacy requests, merchant actions, settings changes, checks."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_shop_kind_at", "shop_id", "kind", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    shop_domain: Mapped[str] = mapped_column(String(255), default="")
    kind: Mapped[str] = mapped_column(String(64))  # installed | uninstalled | shop_redact | retry | ...
    summary: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    actor: Mapped[str] = mapped_column(String(128), default="")  # shopify | merchant:<user> | relais
    at: Mapped[datetime] = mapped_column(default=utcnow)


class DataExport(Base):
    """What Relais holds on one customer, gathered for a ``customers/data_request``; the merchant
    downloads it from the settings page and hands it to the customer."""

    __tablename__ = "data_exports"
    __table_args__ = (UniqueConstraint("shop_id", "request_id", name="uq_data_exports_shop_request"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    customer_ref: Mapped[str] = mapped_column(String(64), default="")  # the platform's customer id
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
