"""The WooCommerce connect flow's one-time states.

``/wc-auth/v1/authorize`` posts the keys to our callback unsigned and without the store's
address; the only thing binding them to a store is the ``user_id`` we chose. So each flow gets a
random state, kept here (as its SHA-256: a leaked table reveals no usable state) with the store
URL it was issued for. A state is claimed once (``used_at``) and expires after an hour.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from store.crypto import Vault
from store.models import Base, Id, Shop, utcnow
from store.shops import normalise_domain, upsert_shop

STATE_TTL_SECONDS = 3600


def state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class WooConnectState(Base):
    __tablename__ = "woocommerce_connect_states"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    store_url: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(32), default="")  # "": the store starts with none
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    shop_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


def issue_state(session: Session, store_url: str, provider: str) -> str:
    """A new one-time state for connecting ``store_url``; the caller commits."""
    state = secrets.token_urlsafe(32)
    session.add(WooConnectState(state_hash=state_digest(state), store_url=store_url, provider=provider))
    session.flush()
    return state


def claim_state(session: Session, state: str) -> WooConnectState | None:
    """The state's row if it is ours, unused and fresh, now marked used (a conditional update:
    two callbacks racing on one state cannot both win); None otherwise."""
    if not state:
        return None
    cutoff = utcnow() - timedelta(seconds=STATE_TTL_SECONDS)
    claimed = session.execute(
        update(WooConnectState)
        .where(
            WooConnectState.state_hash == state_digest(state),
            WooConnectState.used_at.is_(None),
            WooConnectState.created_at > cutoff,
        )
        .values(used_at=utcnow())
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.execute(
        select(WooConnectState).where(WooConnectState.state_hash == state_digest(state))
    ).scalar_one()


def find_state(session: Session, state: str) -> WooConnectState | None:
    return session.execute(
        select(WooConnectState).where(WooConnectState.state_hash == state_digest(state or ""))
    ).scalar_one_or_none()


def register_store(
    session: Session, vault: Vault, store_url: str, consumer_key: str, consumer_secret: str, provider: str
) -> Shop:
    """Store a store's keys (encrypted) with a fresh webhook secret of ours; the shop waits in
    ``connecting`` until a job has checked the keys and created the webhooks. Caller commits."""
    from integrations.woocommerce.connect import new_secret
    from integrations.woocommerce.inventory import LOCATION

    credentials = {"consumer_key": consumer_key, "consumer_secret": consumer_secret, "webhook_secret": new_secret()}
    existing = session.execute(
        select(Shop).where(Shop.platform == "woocommerce", Shop.domain == normalise_domain("woocommerce", store_url))
    ).scalar_one_or_none()
    if existing is not None and existing.status == "active":
        # A connected store keeps its working keys until the new ones pass the live check
        # (jobs/shop_setup.py): keys posted by anyone cannot cut a store off.
        held = dict(vault.open(existing.credentials_enc) or {})
        held["pending"] = credentials
        existing.credentials_enc = vault.seal(held)
        session.flush()
        return existing
    shop = upsert_shop(session, vault, "woocommerce", store_url, credentials, provider, {}, {"location_id": LOCATION})
    shop.status = "connecting"
    session.flush()
    return shop
