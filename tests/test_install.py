"""Installing on Shopify: the authorization-code grant and token exchange, against the fake Shopify
(authorize page, token endpoint and webhook subscriptions behave as documented)."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from integrations.shopify.app_config import app_config, graphql_topic
from integrations.shopify.auth import query_hmac
from integrations.shopify.webhooks import ACCEPTED_TOPICS
from store.app_models import AuditEntry
from store.installs import credentials, find_shop
from store.models import Shop
from tests.app_support import APP_SECRET, SHOP, app_settings, fake_shopify, session_token
from tests.conftest import drain
from tests.fakes.shopify_schema import admin_schema


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    return app_settings(settings, shopify)


def shops(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(Shop))


def start_install(client, shop: str = SHOP) -> tuple[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """/shopify/install → the shop's authorize URL; the fake approves → the callback's query."""
    started = client.get(f"/shopify/install?shop={shop}")
    assert started.status_code == 302
    approved = requests.get(started.headers["Location"], allow_redirects=False, timeout=5)
    assert approved.status_code == 302
    callback = urlsplit(approved.headers["Location"])
    return callback.path, dict(parse_qsl(callback.query))


def signed(params: dict[str, str]) -> dict[str, str]:
    params = {k: v for k, v in params.items() if k != "hmac"}
    return {**params, "hmac": query_hmac(APP_SECRET, params)}


def test_the_authorization_code_grant_installs_the_shop_with_an_expiring_token(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    started = client.get(f"/shopify/install?shop={SHOP}")
    authorize = urlsplit(started.headers["Location"])
    query = dict(parse_qsl(authorize.query))
    assert authorize.path == f"/{SHOP}/admin/oauth/authorize"
    assert query["client_id"] == "test-api-key" and query["scope"] == ",".join(app_config().scopes)
    assert query["redirect_uri"].endswith("/shopify/callback") and len(query["state"]) == 64
    assert "grant_options[]" not in query  # offline token
    path, params = start_install(client)
    assert params["host"].endswith("=")  # base64 padding: signed as %3D in the JS canonical form
    done = client.get(f"{path}?{urlencode(params)}")
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/{SHOP}/admin/apps/test-api-key")
    with runtime.sessions() as session:
        shop = find_shop(session, "shopify", SHOP)
        stored = credentials(runtime.vault, shop)
    assert shop.status == "active" and shop.provider == ""  # none until the merchant saves and tests one
    assert shopify.oauth.accepts(stored["access_token"])
    assert stored["refresh_token"].startswith("shprt_") and stored["expires_at"] > time.time() + 3500
    assert ("relais-test.myshopify.com", "code") in shopify.oauth.grants


def test_install_subscribes_the_shop_to_the_tomls_topics(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    path, params = start_install(client)
    client.get(f"{path}?{urlencode(params)}")
    drain(runtime)
    expected = [graphql_topic(t) for t in app_config().topics]
    assert sorted(shopify.oauth.topics(SHOP)) == sorted(expected)
    assert {s["uri"] for s in shopify.oauth.subscriptions[SHOP]} == {runtime.settings.public_url + "/webhooks/shopify"}
    with runtime.sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.kind == "subscriptions")).one()
    assert entry.summary.startswith(f"0 present, {len(expected)} created")


def test_checking_subscriptions_again_creates_nothing_more(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    from jobs.lifecycle import after_install

    path, params = start_install(client)
    client.get(f"{path}?{urlencode(params)}")
    drain(runtime)
    with runtime.sessions() as session:
        shop_id = find_shop(session, "shopify", SHOP).id
    assert after_install(shop_id).startswith(f"{len(app_config().topics)} present, 0 created")


def test_a_topic_shopify_refuses_is_reported_and_the_others_are_created(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shopify.oauth.refused_topics = {"ORDERS_CREATE", "ORDERS_PAID"}
    path, params = start_install(client)
    client.get(f"{path}?{urlencode(params)}")
    drain(runtime)
    with runtime.sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.kind == "subscriptions")).one()
    assert set(entry.detail["refused"]) == {"ORDERS_CREATE", "ORDERS_PAID"}
    assert "protected customer data" in entry.detail["refused"]["ORDERS_CREATE"]
    assert "APP_UNINSTALLED" in shopify.oauth.topics(SHOP)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p: {**p, "hmac": "0" * 64}, id="bad hmac"),
        pytest.param(lambda p: {**p, "code": "another-code"}, id="code changed after signing"),
        pytest.param(lambda p: signed({**p, "timestamp": str(int(time.time()) - 3600)}), id="stale timestamp"),
        pytest.param(lambda p: signed({**p, "state": "f" * 64}), id="foreign state"),
        pytest.param(lambda p: signed({**p, "shop": "evil.com"}), id="shop evil.com"),
        pytest.param(lambda p: signed({**p, "shop": "other-shop.myshopify.com"}), id="state of another shop"),
    ],
)
def test_a_callback_failing_a_check_stores_nothing_and_calls_nothing(client, runtime, shopify, tamper) -> None:  # type: ignore[no-untyped-def]
    path, params = start_install(client)
    response = client.get(f"{path}?{urlencode(tamper(params))}")
    assert response.status_code in (400, 401, 403)
    assert shops(runtime) == 0
    assert shopify.oauth.grants == []  # the code was never exchanged


def test_a_callback_without_the_state_cookie_stores_nothing(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    path, params = start_install(client)
    client.delete_cookie("shopify_app_state", path="/shopify/")
    assert client.get(f"{path}?{urlencode(params)}").status_code == 403
    assert shops(runtime) == 0 and shopify.oauth.grants == []


def test_install_refuses_a_shop_that_is_not_a_myshopify_domain(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/shopify/install?shop=evil.com").status_code == 400
    assert client.get("/shopify/install?shop=x.myshopify.com.evil.com").status_code == 400


def test_a_signed_install_request_with_a_bad_signature_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    query = urlencode({"shop": SHOP, "timestamp": str(int(time.time())), "hmac": "0" * 64})
    assert client.get(f"/shopify/install?{query}").status_code == 401


def test_the_embedded_page_installs_a_new_shop_by_token_exchange(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    response = client.get(f"/app?shop={SHOP}&embedded=1&id_token={session_token()}")
    assert response.status_code == 200
    with runtime.sessions() as session:
        shop = find_shop(session, "shopify", SHOP)
        stored = credentials(runtime.vault, shop)
    assert (SHOP, "token_exchange") in shopify.oauth.grants
    assert stored["refresh_token"] and shopify.oauth.accepts(stored["access_token"])
    drain(runtime)
    assert "APP_UNINSTALLED" in shopify.oauth.topics(SHOP)
    # The next visit uses the stored token: no second exchange.
    assert client.get(f"/app?shop={SHOP}&id_token={session_token()}").status_code == 200
    assert shopify.oauth.grants.count((SHOP, "token_exchange")) == 1


def test_token_exchange_on_demand_answers_json(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    answer = client.post("/shopify/session", headers={"Authorization": f"Bearer {session_token()}"})
    assert answer.status_code == 200 and answer.json == {"installed": True, "shop": SHOP}
    assert shops(runtime) == 1


def test_a_session_token_shopify_refuses_to_exchange_installs_nothing(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shopify.oauth.client_secret = "rotated-on-shopify-0123456789abcdefgh"  # Shopify no longer knows our secret
    response = client.get(f"/app?shop={SHOP}&id_token={session_token()}")
    assert response.status_code == 401
    assert shops(runtime) == 0


def test_the_toml_declares_what_relais_handles_and_the_compliance_topics() -> None:
    config = app_config()
    assert set(config.topics) <= ACCEPTED_TOPICS
    assert set(config.compliance_topics) == {"customers/data_request", "customers/redact", "shop/redact"}
    enum = admin_schema().get_type("WebhookSubscriptionTopic")
    assert {graphql_topic(t) for t in config.topics} <= set(enum.values)  # type: ignore[union-attr]
    assert "read_orders" in config.scopes and "write_inventory" in config.scopes
