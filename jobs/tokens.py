"""Expiring offline tokens: refreshed ahead of expiry by the cron, and at once after a 401.

A Shopify offline token lasts 3,600 s and its refresh token is spent on use (it rotates), so two
processes must never refresh one shop at the same time: a Redis lock per shop serialises them,
and whoever gets the lock second finds the fresh token already stored and uses it. The new pair is
stored by one UPDATE. If the answer is lost (or the database write fails) after Shopify rotated,
the previous refresh token stays usable until the new one is first used (Shopify, 2026-08-28),
so the next run recovers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import LockError
from sqlalchemy import select

from integrations.errors import AuthError, RetryableError
from integrations.shopify.oauth import TokenEndpoint, TokenSet
from jobs.runtime import Runtime, get_runtime
from store import audit
from store.db import transaction
from store.installs import credentials, store_tokens
from store.models import Shop

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 300  # seconds between cron runs
REFRESH_AHEAD = 900  # refresh what expires within this: three cron runs of margin on a 3,600 s token
LOCK_TIMEOUT = 60


def refresh_expiring() -> dict[str, int]:
    """Cron job: refresh every active Shopify shop's token that expires soon. Idempotent."""
    runtime = get_runtime()
    now = time.time()
    with runtime.sessions() as session:
        rows = session.execute(
            select(Shop.id, Shop.credentials_enc).where(Shop.platform == "shopify", Shop.status == "active")
        ).all()
    due = []
    for shop_id, sealed in rows:
        tokens = TokenSet.from_credentials(runtime.vault.open(sealed) or {})
        if tokens.refresh_token and tokens.expires_within(REFRESH_AHEAD, now):
            due.append(shop_id)
    counts = {"due": len(due), "refreshed": 0, "failed": 0}
    for shop_id in due:
        try:
            refresh_shop(runtime, shop_id)
            counts["refreshed"] += 1
        except (AuthError, RetryableError) as exc:
            counts["failed"] += 1
            log.warning("shop %s: token refresh failed: %s", shop_id, exc)
    return counts


def refresh_shop(runtime: Runtime, shop_id: int, stale_token: str | None = None) -> str | None:
    """Refresh the shop's token; returns the access token to use now (None: nothing to use).

    ``stale_token``: the token a call was just refused with; if the stored one differs, another
    process already refreshed and that one is returned without spending the refresh token.
    Raises ``AuthError`` (refresh token refused: the merchant must open the app again) or
    ``RetryableError``.
    """
    lock = runtime.redis.lock(f"relais:shopify-token:{shop_id}", timeout=LOCK_TIMEOUT, blocking_timeout=30)
    if not lock.acquire():
        raise RetryableError(f"shop {shop_id}: another token refresh is still running", retry_after=5)
    try:
        with transaction(runtime.sessions) as session:
            shop = session.get(Shop, shop_id)
            if shop is None or shop.status != "active":
                return None
            current = TokenSet.from_credentials(credentials(runtime.vault, shop))
            if stale_token is not None and current.access_token and current.access_token != stale_token:
                return current.access_token
            if stale_token is None and not current.expires_within(REFRESH_AHEAD, time.time()):
                return current.access_token  # refreshed meanwhile
            if not current.refresh_token:
                return None  # a non-expiring token (registered by hand): nothing to refresh
            domain = shop.domain
        endpoint = TokenEndpoint(runtime.settings, runtime.http, timeout=runtime.settings.provider_timeout)
        try:
            fresh = endpoint.refresh(domain, current.refresh_token)
        except AuthError as exc:
            with transaction(runtime.sessions) as session:
                audit.record(session, session.get(Shop, shop_id), "token_refresh_failed", str(exc))
            raise
        with transaction(runtime.sessions) as session:
            shop = session.get(Shop, shop_id)
            if shop is None:
                return None
            store_tokens(session, runtime.vault, shop, fresh)
        log.info("shop %s: access token refreshed", shop_id)
        return fresh.access_token
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("shop %s: token lock expired before release", shop_id)


def refresher(shop_id: int) -> Callable[[str], str | None]:
    """For ``RefreshingAdminClient``: the refresh to try after a 401 (None when it cannot)."""

    def refresh(stale_token: str) -> str | None:
        try:
            return refresh_shop(get_runtime(), shop_id, stale_token=stale_token)
        except (AuthError, RetryableError) as exc:
            log.warning("shop %s: could not refresh after a 401: %s", shop_id, exc)
            return None

    return refresh
