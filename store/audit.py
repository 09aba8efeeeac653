"""The audit log: write an entry, read a shop's latest ones (the settings page shows them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.app_models import AuditEntry
from store.models import Shop


def record(
    session: Session,
    shop: Shop | None,
    kind: str,
    summary: str,
    detail: Mapping[str, Any] | None = None,
    actor: str = "relais",
) -> AuditEntry:
    """Add one entry in the caller's transaction (never secrets or personal data in ``detail``)."""
    entry = AuditEntry(
        shop_id=shop.id if shop is not None else None,
        shop_domain=shop.domain if shop is not None else "",
        kind=kind,
        summary=summary,
        detail=dict(detail) if detail is not None else None,
        actor=actor,
    )
    session.add(entry)
    return entry


def latest(session: Session, shop_id: int, kinds: Sequence[str] | None = None, limit: int = 20) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.shop_id == shop_id)
    if kinds:
        stmt = stmt.where(AuditEntry.kind.in_(kinds))
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))


def last(session: Session, shop_id: int, kind: str) -> AuditEntry | None:
    found = latest(session, shop_id, [kind], limit=1)
    return found[0] if found else None
