"""Install creates no shop-level subscription for a topic the deployed shopify.app.toml subscribes
app-wide (Shopify would send each event once per subscription), and removes the shop-level copies
an earlier install created; against the fake Shopify (documents validated against its schema)."""

from __future__ import annotations

import tomllib

import pytest
from sqlalchemy import select

from integrations.shopify.app_config import APP_TOML, app_config, graphql_topic
from jobs.lifecycle import after_install
from store.app_models import AuditEntry
from tests.app_support import SHOP, app_settings, fake_shopify, install

TOML_CLIENT_ID = tomllib.loads(APP_TOML.read_text())["client_id"]


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    # SHOPIFY_API_KEY is the TOML's client_id: the TOML is this app's, deployed with its topics.
    return app_settings(settings, shopify).with_(shopify_api_key=TOML_CLIENT_ID)


def address(runtime) -> str:  # type: ignore[no-untyped-def]
    return runtime.settings.public_url + "/webhooks/shopify"


def test_install_creates_no_shop_level_subscription_for_a_topic_the_toml_declares(runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    summary = after_install(shop_id)
    assert shopify.oauth.subscriptions.get(SHOP, []) == []
    assert summary.startswith("0 present, 0 created, 0 refused by Shopify")
    with runtime.sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.kind == "subscriptions")).one()
    assert sorted(entry.detail["app_wide"]) == sorted(graphql_topic(t) for t in app_config().topics)


def test_shop_level_duplicates_an_earlier_install_created_are_removed_and_others_kept(runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    ours = address(runtime)
    shopify.oauth.subscriptions[SHOP] = [
        {"id": "gid://shopify/WebhookSubscription/1", "topic": "ORDERS_PAID", "uri": ours},
        {"id": "gid://shopify/WebhookSubscription/2", "topic": "APP_UNINSTALLED", "uri": ours},
        # Not ours (another address) and not declared app-wide: left alone.
        {"id": "gid://shopify/WebhookSubscription/3", "topic": "ORDERS_PAID", "uri": "https://elsewhere.example/hook"},
        {"id": "gid://shopify/WebhookSubscription/4", "topic": "PRODUCTS_UPDATE", "uri": ours},
    ]
    summary = after_install(shop_id)
    left = {s["id"] for s in shopify.oauth.subscriptions[SHOP]}
    assert left == {"gid://shopify/WebhookSubscription/3", "gid://shopify/WebhookSubscription/4"}
    assert summary.endswith("2 shop-level duplicates removed")
    assert after_install(shop_id).endswith("0 shop-level duplicates removed")  # safe to repeat


def test_the_platforms_webhook_check_skips_app_wide_topics_too(runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    from jobs.parties import platform_for
    from store.models import Shop

    shop_id = install(runtime, shopify)
    with runtime.sessions() as session:
        platform = platform_for(runtime, session.get(Shop, shop_id))
    report = platform.ensure_webhooks()
    assert report.created == [] and shopify.oauth.subscriptions.get(SHOP, []) == []
