"""The settings page: who may see it, what it shows, what the merchant can change and do."""

from __future__ import annotations

import re
import time

import jwt
import pytest
import requests
from sqlalchemy import select

from jobs import states
from store import orders as order_store
from store.app_models import DataExport
from store.db import transaction
from store.models import Order, OrderLine, Shop
from store.shops import upsert_shop
from tests.app_support import API_KEY, APP_SECRET, SHOP, app_settings, fake_shopify, install, session_token
from tests.conftest import drain
from web.app_session import signed_link

OTHER = "other-shop.myshopify.com"


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    return app_settings(settings, shopify)


def bearer(shop: str = SHOP, **claims: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(shop, **claims)}", "X-Relais-Fetch": "1"}


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]


def add_order(runtime, shop_id: int, platform_id: str, state: str, reason: str = "", sku: str = "MUG") -> int:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        row = Order(
            shop_id=shop_id,
            platform_order_id=platform_id,
            name=f"#{platform_id}",
            paid=True,
            ship_to={"name": "Ann", "address1": "1 Rue", "city": "Paris", "country_code": "FR"},
            contact={"email": "ann@example.com", "phone": ""},
            lines=[OrderLine(platform_line_id="1", sku=sku, quantity=1, requires_shipping=True)],
            history=[],
        )
        session.add(row)
        order_store.transition(row, states.RECEIVED, "received")
        if state != states.RECEIVED:
            order_store.transition(row, state, reason)
        if state == states.FAILED:
            row.failure_reason = reason
        session.flush()
        return row.id


def state_of(runtime, order_id: int) -> str:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.get(Order, order_id).state


# --- who may see it -------------------------------------------------------------------------


def test_without_a_session_token_or_link_the_page_answers_401(client) -> None:  # type: ignore[no-untyped-def]
    answer = client.get("/app")
    assert answer.status_code == 401
    assert answer.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: session_token(exp=int(time.time()) - 30, nbf=int(time.time()) - 90), id="expired"),
        pytest.param(lambda: session_token(aud="another-app"), id="another app"),
        pytest.param(lambda: session_token(dest=f"https://{OTHER}"), id="another shop"),
        pytest.param(lambda: session_token(secret="another-app-secret-0123456789abcdefgh"), id="another secret"),
        pytest.param(
            lambda: jwt.encode(
                {"iss": f"https://{SHOP}/admin", "dest": f"https://{SHOP}", "aud": API_KEY, "exp": time.time() + 60},
                key=None,
                algorithm="none",
            ),
            id="alg none",
        ),
    ],
)
def test_a_bad_session_token_gets_401_and_shows_nothing(client, runtime, shopify, token) -> None:  # type: ignore[no-untyped-def]
    install(runtime, shopify)
    answer = client.get(f"/app?id_token={token()}")
    assert answer.status_code == 401
    assert b"Needs attention" not in answer.data
    fetch = client.post("/app/settings", headers={"Authorization": f"Bearer {token()}"})
    assert fetch.status_code == 401


def test_a_session_token_for_another_shop_cannot_act_on_this_shops_orders(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    install(runtime, shopify, OTHER)
    order_id = add_order(runtime, shop_id, "1", states.FAILED, "refused")
    page = client.get(f"/app?id_token={session_token(OTHER)}")
    answer = client.post(f"/app/orders/{order_id}/retry", data={"csrf_token": csrf(page.text)}, headers=bearer(OTHER))
    assert "no such order in this shop" in answer.text
    assert state_of(runtime, order_id) == states.FAILED


def test_the_embedded_page_may_be_framed_only_by_the_shops_admin(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    install(runtime, shopify)
    answer = client.get(f"/app?shop={SHOP}&host=x&embedded=1&id_token={session_token()}")
    assert answer.status_code == 200
    assert answer.headers["Content-Security-Policy"] == (f"frame-ancestors https://{SHOP} https://admin.shopify.com;")
    assert 'src="https://cdn.shopify.com/shopifycloud/app-bridge.js"' in answer.text
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in answer.text


def test_a_signed_link_opens_the_page_outside_the_admin_and_expires(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    link = signed_link(runtime.settings, shop_id).removeprefix(runtime.settings.public_url)
    answer = client.get(link)
    assert answer.status_code == 200 and SHOP in answer.text
    assert answer.headers["Content-Security-Policy"] == "frame-ancestors 'none';"
    assert "app-bridge.js" not in answer.text  # not embedded: no App Bridge
    assert client.get(link[:-3] + "abc").status_code == 401
    expired = signed_link(runtime.settings, shop_id, lifetime=-1).removeprefix(runtime.settings.public_url)
    assert client.get(expired).status_code == 401


def test_a_woocommerce_store_gets_the_same_page_through_a_signed_link(client, runtime) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shop = Shop(platform="woocommerce", domain="shop.example.org", provider="sandbox", settings={})
        shop.provider_options_enc = runtime.vault.seal({})
        session.add(shop)
        session.flush()
        shop_id = shop.id
    answer = client.get(signed_link(runtime.settings, shop_id).removeprefix(runtime.settings.public_url))
    assert answer.status_code == 200 and "shop.example.org" in answer.text and "Save settings" in answer.text


# --- forms ----------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    install(runtime, shopify)
    assert client.post("/app/settings", data={"push_on": "created"}, headers=bearer()).status_code == 403
    other_session = client.get(f"/app?id_token={session_token(sid='another-admin-session')}").text
    stolen = {"push_on": "created", "csrf_token": csrf(other_session)}
    assert client.post("/app/settings", data=stolen, headers=bearer()).status_code == 403


def settings_form(page_html: str, **changes: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf(page_html),
        "push_on": "paid",
        "notify_customer": "on",
        "location_id": "",
        "stock_interval_minutes": "5",
        "safety_buffer": "0",
        "sku_buffers": "",
        "hold_tags": "",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_the_merchant_changes_the_settings(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    page = client.get(f"/app?id_token={session_token()}").text
    form = settings_form(
        page,
        push_on="created",
        location_id="gid://shopify/Location/55",
        safety_buffer="2",
        sku_buffers="MUG = 5\nTEE: 1",
        hold_tags="review, wholesale",
        hold_high_risk="on",
        **{"required:zip": "on", "notify_customer": None},  # type: ignore[arg-type]
    )
    answer = client.post("/app/settings", data=form, headers=bearer())
    assert answer.status_code == 200 and answer.headers["X-Relais-Partial"] == "1"
    assert "Settings saved" in answer.text
    with runtime.sessions() as session:
        saved = session.get(Shop, shop_id).settings
    assert saved["push_on"] == "created" and saved["location_id"] == "gid://shopify/Location/55"
    assert saved["sku_buffers"] == {"MUG": 5, "TEE": 1} and saved["safety_buffer"] == 2
    assert saved["hold_tags"] == ["review", "wholesale"] and saved["hold_high_risk"] is True
    assert saved["notify_customer"] is False
    assert saved["required_address_fields"] == ["address1", "city", "country_code", "zip"]


def test_invalid_settings_save_nothing_and_say_which_field(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    page = client.get(f"/app?id_token={session_token()}").text
    form = settings_form(page, stock_interval_minutes="0", sku_buffers="MUG five", push_on="created")
    answer = client.post("/app/settings", data=form, headers=bearer())
    assert "Nothing saved" in answer.text and "between 1 and 1440" in answer.text and "MUG five" in answer.text
    with runtime.sessions() as session:
        assert session.get(Shop, shop_id).settings["push_on"] == "paid"


# --- provider credentials (live: the sandbox provider answers over HTTP) ----------------------


def test_provider_credentials_are_tested_saved_and_never_shown_back(live, shopify) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    shop_id = install(runtime, shopify)
    http = requests.Session()
    page = http.get(f"{server.url}/app?id_token={session_token()}").text
    secret = "sandbox-secret-token-123456"
    answer = http.post(
        f"{server.url}/app/provider",
        data={"csrf_token": csrf(page), "provider": "sandbox", "sandbox:token": secret},
        headers=bearer(),
    )
    assert "Saved: sandbox accepted the credentials" in answer.text
    assert secret not in answer.text and "••••3456" in answer.text
    with runtime.sessions() as session:
        assert runtime.vault.open(session.get(Shop, shop_id).provider_options_enc) == {"token": secret}
    # The sandbox refuses the next call with 401: the credentials are not saved.
    faults = {"fail_next": 1, "status": 401}
    requests.post(f"{server.url}/sandbox/api/faults", json=faults, headers={"Authorization": "Bearer bad-token-0000"})
    refused = http.post(
        f"{server.url}/app/provider",
        data={"csrf_token": csrf(page), "provider": "sandbox", "sandbox:token": "bad-token-0000"},
        headers=bearer(),
    )
    assert "refused these credentials" in refused.text
    with runtime.sessions() as session:
        assert runtime.vault.open(session.get(Shop, shop_id).provider_options_enc) == {"token": secret}


def test_shipbob_without_its_required_fields_is_refused_before_any_call(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    install(runtime, shopify)
    page = client.get(f"/app?id_token={session_token()}").text
    answer = client.post(
        "/app/provider",
        data={"csrf_token": csrf(page), "provider": "shipbob", "shipbob:token": "pat"},
        headers=bearer(),
    )
    assert "shipbob needs: channel_id, webhook_secret" in answer.text


# --- the merchant's view and actions ----------------------------------------------------------


def test_the_attention_list_shows_failed_held_unknown_sku_and_cancel_too_late(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    add_order(runtime, shop_id, "1", states.FAILED, "sandbox refused the order: lines: unknown SKU")
    add_order(runtime, shop_id, "2", states.HELD, "tagged review (a hold tag)")
    add_order(runtime, shop_id, "3", states.RECEIVED, "waiting for payment", sku="")
    add_order(runtime, shop_id, "4", states.CANCEL_TOO_LATE, "sandbox: already shipped")
    add_order(runtime, shop_id, "5", states.PUSHED, "accepted")
    page = client.get(f"/app?id_token={session_token()}").text
    attention = page.split('id="attention"')[1].split('id="orders"')[0]
    for name in ("#1", "#2", "#3", "#4"):
        assert f"<strong>{name}</strong>" in attention
    assert "<strong>#5</strong>" not in attention
    assert "sandbox refused the order: lines: unknown SKU" in attention and "unknown SKU</span>" in attention
    assert 'data-action="retry" data-order="#1"' in attention and 'data-action="release" data-order="#2"' in attention


def test_retry_sends_a_failed_order_again(live, shopify) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    shop_id = install(runtime, shopify)
    order_id = add_order(runtime, shop_id, "11", states.FAILED, "sandbox answered 503")
    http = requests.Session()
    page = http.get(f"{server.url}/app?id_token={session_token()}").text
    answer = http.post(f"{server.url}/app/orders/{order_id}/retry", data={"csrf_token": csrf(page)}, headers=bearer())
    assert "#11 will be sent again" in answer.text
    assert state_of(runtime, order_id) == states.READY
    drain(runtime)
    assert state_of(runtime, order_id) == states.PUSHED
    again = http.post(f"{server.url}/app/orders/{order_id}/retry", data={"csrf_token": csrf(page)}, headers=bearer())
    assert "only failed orders are retried" in again.text


def test_release_hold_pushes_a_held_order_and_cancel_at_provider_cancels_it(live, shopify) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    shop_id = install(runtime, shopify)
    order_id = add_order(runtime, shop_id, "12", states.HELD, "tagged review (a hold tag)")
    http = requests.Session()
    link = signed_link(runtime.settings, shop_id)  # the same actions through a signed link
    token = link.split("t=")[1]
    page = http.get(link).text
    released = http.post(f"{server.url}/app/orders/{order_id}/release?t={token}", data={"csrf_token": csrf(page)})
    assert "hold released by the merchant" in released.text
    drain(runtime)
    assert state_of(runtime, order_id) == states.PUSHED
    cancelled = http.post(f"{server.url}/app/orders/{order_id}/cancel?t={token}", data={"csrf_token": csrf(page)})
    assert "cancel sent to the provider" in cancelled.text
    drain(runtime)
    # The sandbox ships at once in tests (no delay), so it answers that it is too late: either way
    # the provider was asked and its answer recorded.
    assert state_of(runtime, order_id) in (states.CANCELLED, states.CANCEL_TOO_LATE)
    with runtime.sessions() as session:
        assert [a.action for a in session.get(Order, order_id).attempts][-1] == "cancel"


def test_a_data_export_is_downloadable_by_its_shop_only(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    other_id = install(runtime, shopify, OTHER)
    with transaction(runtime.sessions) as session:
        export = DataExport(shop_id=shop_id, request_id="77", customer_ref="9", data={"orders": []})
        session.add(export)
        session.flush()
        export_id = export.id
    mine = client.get(f"/app/exports/{export_id}", headers=bearer())
    assert mine.status_code == 200 and mine.json == {"orders": []}
    assert 'filename="customer-data-77.json"' in mine.headers["Content-Disposition"]
    theirs = signed_link(runtime.settings, other_id).removeprefix(runtime.settings.public_url)
    assert client.get(theirs.replace("/app?", f"/app/exports/{export_id}?")).status_code == 404


def test_a_shop_registered_by_hand_still_opens_by_link(client, runtime) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shop_id = upsert_shop(session, runtime.vault, "shopify", SHOP, {"access_token": "shpat_x"}, "sandbox", {}).id
    answer = client.get(signed_link(runtime.settings, shop_id).removeprefix(runtime.settings.public_url))
    assert answer.status_code == 200
    with runtime.sessions() as session:
        assert session.scalars(select(Shop.status)).one() == "active"


def test_the_secret_used_to_sign_session_tokens_is_the_apps(settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.shopify_api_secret == APP_SECRET


def test_the_demo_prints_a_settings_link_that_opens_the_demo_shops_page(live) -> None:  # type: ignore[no-untyped-def]
    from app import create_app

    server, runtime = live
    runner = create_app(runtime=runtime).test_cli_runner()
    result = runner.invoke(args=["demo", "--url", server.url, "--orders", "1", "--timeout", "1"])
    assert result.exit_code == 0, result.output
    link = re.search(r"settings page of relais-demo\.myshopify\.com \(valid 24 h\): (\S+)", result.output).group(1)  # type: ignore[union-attr]
    assert link.startswith(f"{server.url}/app?t=")
    page = requests.get(link, timeout=5)
    assert page.status_code == 200 and "relais-demo.myshopify.com" in page.text


# --- what the page says about stock, echoes and steps (issue 15) ------------------------------


def woocommerce_shop(runtime) -> int:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shop = Shop(platform="woocommerce", domain="https://shop.example.org", provider="sandbox", settings={})
        shop.settings = {"location_id": "store"}
        shop.provider_options_enc = runtime.vault.seal({})
        session.add(shop)
        session.flush()
        return shop.id


def test_the_stock_card_says_a_state_and_counts_skus_in_good_english(client, runtime) -> None:  # type: ignore[no-untyped-def]
    from store.models import utcnow
    from store.stock_models import StockSyncRun

    shop_id = woocommerce_shop(runtime)
    link = signed_link(runtime.settings, shop_id).removeprefix(runtime.settings.public_url)
    before = client.get(link).text.split('id="stock-sync"')[1].split('id="drift"')[0]
    assert "once a location is set" not in before  # it is set ("store")
    assert "the first sync has not finished yet" in before and 'data-sync-state="not_run"' in before
    with transaction(runtime.sessions) as session:
        session.add(StockSyncRun(shop_id=shop_id, status="ok", finished_at=utcnow(), written={"MUG": 3}, skipped={}))
    card = client.get(link).text.split('id="stock-sync"')[1].split('id="drift"')[0]
    assert "1 SKU written, 0 skipped" in card and "SKUs" not in card
    assert 'data-sync-state="synced">synced</span>' in card
    assert re.search(r"\d:\d{2}:\d{2}", card)  # the time is beside the badge, to the second
    with transaction(runtime.sessions) as session:
        written = {"MUG": 3, "TEE": 1}
        session.add(
            StockSyncRun(shop_id=shop_id, status="ok", finished_at=utcnow(), written=written, skipped={"X": "?"})
        )
    card = client.get(link).text.split('id="stock-sync"')[1].split('id="drift"')[0]
    assert "2 SKUs written, 1 skipped" in card and 'data-sync-state="needs_look">needs a look</span>' in card


def test_health_counts_the_woocommerce_echoes_the_store_was_told_were_ignored(client, runtime) -> None:  # type: ignore[no-untyped-def]
    from integrations.woocommerce import echoes

    shop_id = woocommerce_shop(runtime)
    saved = {"id": 7, "status": "completed", "date_modified_gmt": "2026-11-30T10:00:00"}
    echoes.remember(runtime.redis, shop_id, "order", saved)  # our write, as the store answered it
    for _ in range(3):  # its order.updated deliveries come back: recognised and dropped
        assert echoes.is_echo(runtime.redis, shop_id, "order", saved)
    assert not echoes.is_echo(runtime.redis, shop_id, "order", {**saved, "status": "cancelled"})  # the merchant's
    link = signed_link(runtime.settings, shop_id).removeprefix(runtime.settings.public_url)
    webhooks = client.get(link).text.split('id="health-webhooks"')[1].split('id="health-provider"')[0]
    assert "3 ignored (3 echoes of our own writes)" in webhooks
