"""Expiring offline tokens: refreshed ahead of expiry, refreshed once on a 401, stored as a pair."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, select

from integrations.errors import AuthError
from integrations.shopify.oauth import TokenSet
from jobs import tokens
from jobs.parties import platform_for
from store.app_models import AuditEntry
from store.db import transaction
from store.installs import credentials, store_tokens
from store.models import Shop
from tests.app_support import SHOP, app_settings, fake_shopify, install


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    return app_settings(settings, shopify)


def stored(runtime, shop_id: int) -> dict:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return credentials(runtime.vault, session.get(Shop, shop_id))


def expire_soon(runtime, shop_id: int, seconds: float = 120) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id)
        current = TokenSet.from_credentials(credentials(runtime.vault, shop))
        store_tokens(
            session, runtime.vault, shop, TokenSet(**{**current.__dict__, "expires_at": time.time() + seconds})
        )


def test_the_cron_refreshes_a_token_close_to_expiry_and_stores_the_new_pair(runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    before = stored(runtime, shop_id)
    expire_soon(runtime, shop_id)
    assert tokens.refresh_expiring() == {"due": 1, "refreshed": 1, "failed": 0}
    after = stored(runtime, shop_id)
    assert after["access_token"] != before["access_token"] and after["refresh_token"] != before["refresh_token"]
    assert after["expires_at"] > time.time() + 3500
    assert shopify.oauth.accepts(after["access_token"])
    assert before["refresh_token"] not in shopify.oauth.refresh  # spent: it rotated


def test_a_token_far_from_expiry_is_left_alone(runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    before = stored(runtime, shop_id)
    assert tokens.refresh_expiring() == {"due": 0, "refreshed": 0, "failed": 0}
    assert stored(runtime, shop_id) == before


def test_the_new_pair_is_written_by_one_update(runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    expire_soon(runtime, shop_id)
    statements: list[str] = []

    def spy(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE SHOPS"):
            statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", spy)
    try:
        tokens.refresh_shop(runtime, shop_id)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", spy)
    assert len(statements) == 1 and "credentials_enc" in statements[0]


def test_a_401_refreshes_the_token_once_and_the_call_goes_through(runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    old = stored(runtime, shop_id)["access_token"]
    shopify.oauth.expire(old)  # Shopify's hour is up before our cron came round
    with runtime.sessions() as session:
        platform = platform_for(runtime, session.get(Shop, shop_id))
    report = platform.ensure_webhooks()  # type: ignore[attr-defined]
    assert "APP_UNINSTALLED" in report.created
    fresh = stored(runtime, shop_id)["access_token"]
    assert fresh != old and shopify.oauth.accepts(fresh)
    assert [kind for _, kind in shopify.oauth.grants].count("refresh") == 1


def test_a_second_process_finding_the_token_already_refreshed_does_not_spend_the_refresh_token(
    runtime, shopify
) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    old = stored(runtime, shop_id)["access_token"]
    first = tokens.refresh_shop(runtime, shop_id, stale_token=old)
    second = tokens.refresh_shop(runtime, shop_id, stale_token=old)  # it was refused with the old one too
    assert first == second == stored(runtime, shop_id)["access_token"]
    assert [kind for _, kind in shopify.oauth.grants].count("refresh") == 1


def test_a_refused_refresh_token_is_reported_and_audited(runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    shopify.oauth.refresh.clear()  # revoked on Shopify's side
    expire_soon(runtime, shop_id)
    with pytest.raises(AuthError, match="invalid_grant"):
        tokens.refresh_shop(runtime, shop_id)
    with runtime.sessions() as session:
        assert session.scalars(select(AuditEntry.kind).where(AuditEntry.shop_id == shop_id)).all()[-1] == (
            "token_refresh_failed"
        )
    assert tokens.refresh_expiring()["failed"] == 1


def test_a_hand_registered_token_without_expiry_is_never_refreshed(runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    from store.shops import upsert_shop

    with transaction(runtime.sessions) as session:
        shop_id = upsert_shop(session, runtime.vault, "shopify", SHOP, {"access_token": "shpat_x"}, "sandbox", {}).id
    assert tokens.refresh_shop(runtime, shop_id, stale_token="shpat_x") is None
    assert tokens.refresh_expiring()["due"] == 0
