"""Connecting a store end to end over HTTPS: authorize redirect with our one-time state → the
store posts keys to our callback → a job checks them and creates our webhooks with our secret →
the store's first signed order is accepted. And the manual keys form, and webhook upkeep.

The merchant's browser opens the connect page from an operator's signed link and posts its
forms with the hidden link and CSRF token the page carries, as a real browser would."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import requests
from sqlalchemy import func, select

from jobs.shop_setup import check_webhooks
from store.models import Shop
from store.sync_models import ShopSync
from tests.conftest import drain
from web.app_session import signed_link
from web.woocommerce_access import connect_link

HIDDEN = r'<input type="hidden" name="([^"]+)" value="([^"]*)"'


def browser(certificate):  # type: ignore[no-untyped-def]
    session = requests.Session()
    session.verify, session.trust_env = str(certificate.cert_path), False
    return session


def merchant(service, certificate, store_url: str = ""):  # type: ignore[no-untyped-def]
    """A browser that opened the operator's connect link, and the hidden fields of its forms."""
    web = browser(certificate)
    page = web.get(connect_link(service.runtime.settings, store_url))
    assert page.status_code == 200
    fields = re.findall(HIDDEN, page.text)
    return web, {name: html.unescape(value) for name, value in fields}


def post_keys(service, certificate, form):  # type: ignore[no-untyped-def]
    web, proof = merchant(service, certificate)
    return web.post(f"{service.url}/woocommerce/keys", data={**proof, **form})


def shops(service) -> list[Shop]:  # type: ignore[no-untyped-def]
    with service.runtime.sessions() as session:
        return list(session.scalars(select(Shop)))


def connect(service, woo, certificate):  # type: ignore[no-untyped-def]
    """The merchant's browser: our connect form → the store's authorize page → back to us."""
    web, proof = merchant(service, certificate)
    start = web.post(
        f"{service.url}/woocommerce/connect",
        data={**proof, "store_url": woo.url, "provider": "sandbox"},
        allow_redirects=False,
    )
    assert start.status_code == 302
    authorize = start.headers["Location"]
    back = web.get(authorize, allow_redirects=False)
    return web, authorize, back


def test_the_connect_flow_end_to_end(tls_service, woo, certificate) -> None:  # type: ignore[no-untyped-def]
    service = tls_service
    web, authorize, back = connect(service, woo, certificate)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{woo.url}/wc-auth/v1/authorize?")
    assert query["scope"] == ["read_write"] and query["app_name"] == ["Relais"]
    assert query["callback_url"] == [f"{service.url}/woocommerce/callback"]  # https
    state = query["user_id"][0]
    assert len(state) >= 40
    assert woo.callbacks == [200]
    assert back.status_code == 302 and back.headers["Location"].endswith(f"success=1&user_id={state}")

    [shop] = shops(service)
    assert shop.status == "connecting" and shop.domain == woo.url
    stored = service.runtime.vault.open(shop.credentials_enc)
    key = woo.state.keys[-1]
    assert stored["consumer_key"] == key.consumer_key and key.consumer_key.encode() not in shop.credentials_enc

    drain(service.runtime)  # keys checked with a live call, webhooks created
    service.shop_id = shop.id
    assert service.shop().status == "active"
    hooks = list(woo.state.webhooks.values())
    assert sorted(h.topic for h in hooks) == sorted(
        ["order.created", "order.updated", "order.deleted", "order.restored", "product.updated"]
    )
    assert {h.delivery_url for h in hooks} == {f"{service.url}/webhooks/woocommerce/{shop.id}"}
    assert {h.secret for h in hooks} == {stored["webhook_secret"]} and stored["webhook_secret"].isalnum()
    assert len(woo.pings) == 5
    assert "connected" in web.get(back.headers["Location"]).text

    oid = woo.state.create_order([("MUG", 1)])
    assert woo.deliver() == [200]  # the store's first signed order.created
    drain(service.runtime)
    assert [o["reference"] for o in service.provider_orders("sandbox")] == [f"{shop.id}-{oid}"]


def test_a_reused_or_foreign_state_stores_nothing(tls_service, woo, certificate) -> None:  # type: ignore[no-untyped-def]
    service = tls_service
    _, authorize, _ = connect(service, woo, certificate)
    state = parse_qs(urlsplit(authorize).query)["user_id"][0]
    web = browser(certificate)
    keys = {
        "key_id": 9,
        "consumer_key": "ck_" + "a" * 40,
        "consumer_secret": "cs_" + "b" * 40,
        "key_permissions": "read_write",
    }
    replay = web.post(f"{service.url}/woocommerce/callback", json={**keys, "user_id": state})
    foreign = web.post(f"{service.url}/woocommerce/callback", json={**keys, "user_id": "not-a-state-of-ours"})
    assert replay.status_code == 400 and foreign.status_code == 400  # WooCommerce then deletes the key
    [shop] = shops(service)
    assert service.runtime.vault.open(shop.credentials_enc)["consumer_key"] != keys["consumer_key"]


def test_a_declined_approval_stores_nothing(tls_service, woo, certificate) -> None:  # type: ignore[no-untyped-def]
    woo.deny = True
    _, _, back = connect(tls_service, woo, certificate)
    assert "success=0" in back.headers["Location"]
    assert shops(tls_service) == []
    assert "Not connected" in browser(certificate).get(back.headers["Location"]).text


def test_connecting_refuses_a_callback_that_would_not_be_https(client, settings) -> None:  # type: ignore[no-untyped-def]
    page = client.get(connect_link(settings).removeprefix(settings.public_url))
    proof = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.get_data(as_text=True)))
    form = {**proof, "store_url": "https://127.0.0.1:9", "provider": "sandbox"}
    answer = client.post("/woocommerce/connect", data=form)
    assert answer.status_code == 400 and b"https:// callback_url" in answer.data


def test_the_manual_keys_form_connects_a_store_too(tls_service, woo, certificate) -> None:  # type: ignore[no-untyped-def]
    service = tls_service
    form = {
        "store_url": woo.url + "/",
        "consumer_key": woo.key.consumer_key,
        "consumer_secret": woo.key.consumer_secret,
        "provider": "sandbox",
    }
    answer = post_keys(service, certificate, form)
    assert answer.status_code == 200 and "checking your keys" in answer.text
    drain(service.runtime)
    [shop] = shops(service)
    assert shop.status == "active" and len(woo.state.webhooks) == 5


def test_keys_the_store_refuses_leave_the_store_unconnected_and_say_why(tls_service, woo, certificate) -> None:  # type: ignore[no-untyped-def]
    service = tls_service
    form = {"store_url": woo.url, "consumer_key": woo.key.consumer_key, "consumer_secret": "cs_" + "0" * 40}
    post_keys(service, certificate, form)
    drain(service.runtime)
    [shop] = shops(service)
    assert shop.status == "connecting" and woo.state.webhooks == {}
    with service.runtime.sessions() as session:
        assert "Consumer secret is invalid" in session.get(ShopSync, shop.id).notice


def test_keys_posted_by_a_stranger_for_a_connected_store_do_not_cut_it_off(tls_service, woo, certificate) -> None:  # type: ignore[no-untyped-def]
    service = tls_service
    good = {"store_url": woo.url, "consumer_key": woo.key.consumer_key, "consumer_secret": woo.key.consumer_secret}
    post_keys(service, certificate, {**good, "provider": "sandbox"})
    drain(service.runtime)
    [shop] = shops(service)
    working = service.runtime.vault.open(shop.credentials_enc)
    forged = {**good, "consumer_key": "ck_" + "1" * 40, "consumer_secret": "cs_" + "2" * 40, "provider": "sandbox"}
    post_keys(service, certificate, forged)
    drain(service.runtime)
    [shop] = shops(service)
    kept = service.runtime.vault.open(shop.credentials_enc)
    assert shop.status == "active"
    assert (kept["consumer_key"], kept["webhook_secret"]) == (working["consumer_key"], working["webhook_secret"])
    assert "pending" not in kept
    with service.runtime.sessions() as session:
        assert "working ones are kept" in session.get(ShopSync, shop.id).notice


def test_reconnecting_a_connected_store_with_good_keys_replaces_them_once_checked(
    tls_service, woo, certificate
) -> None:  # type: ignore[no-untyped-def]
    service = tls_service
    good = {"store_url": woo.url, "consumer_key": woo.key.consumer_key, "consumer_secret": woo.key.consumer_secret}
    post_keys(service, certificate, {**good, "provider": "sandbox"})
    drain(service.runtime)
    first = service.runtime.vault.open(shops(service)[0].credentials_enc)["webhook_secret"]
    post_keys(service, certificate, {**good, "provider": "sandbox"})
    drain(service.runtime)
    [shop] = shops(service)
    now = service.runtime.vault.open(shop.credentials_enc)
    assert shop.status == "active" and "pending" not in now
    assert now["webhook_secret"] != first  # a new secret of ours, given to the store's webhooks
    assert {hook.secret for hook in woo.state.webhooks.values()} == {now["webhook_secret"]}


def test_the_webhook_check_reactivates_disabled_webhooks_recreates_lost_ones_and_tells_the_merchant(
    tls_service, woo, certificate
) -> None:  # type: ignore[no-untyped-def]
    service = tls_service
    connect(service, woo, certificate)
    drain(service.runtime)
    [shop] = shops(service)
    hooks = sorted(woo.state.webhooks.values(), key=lambda h: h.topic)
    hooks[0].status, hooks[0].failure_count = "disabled", 6  # after 7 failed deliveries
    del woo.state.webhooks[hooks[1].id]
    assert check_webhooks(shop.id) == "created 1, reactivated 1"
    assert sorted(h.status for h in woo.state.webhooks.values()) == ["active"] * 5
    with service.runtime.sessions() as session:
        notice = session.get(ShopSync, shop.id).notice
        assert "disabled by WooCommerce" in notice and "created again" in notice
        assert session.scalar(select(func.count()).select_from(Shop)) == 1
    assert check_webhooks(shop.id) == "created 0, reactivated 0"


def test_a_stores_settings_page_links_to_its_keys_page_which_replaces_that_stores_keys_only(
    tls_service, woo, certificate
) -> None:  # type: ignore[no-untyped-def]
    service = tls_service
    good = {"store_url": woo.url, "consumer_key": woo.key.consumer_key, "consumer_secret": woo.key.consumer_secret}
    post_keys(service, certificate, good)
    drain(service.runtime)
    [shop] = shops(service)
    web = browser(certificate)
    settings_page = web.get(signed_link(service.runtime.settings, shop.id)).text
    keys_page_url = html.unescape(re.search(r'href="([^"]*/woocommerce/keys\?t=[^"]+)"', settings_page).group(1))  # type: ignore[union-attr]
    page = web.get(f"{service.url}{keys_page_url}" if keys_page_url.startswith("/") else keys_page_url)
    assert page.status_code == 200 and woo.url in page.text and 'name="store_url"' not in page.text
    proof = {n: html.unescape(v) for n, v in re.findall(HIDDEN, page.text)}
    answer = web.post(
        f"{service.url}/woocommerce/keys", data={**proof, **good, "store_url": "https://elsewhere.example"}
    )
    assert answer.status_code == 200 and woo.url in answer.text  # the link's store, whatever the form said
    drain(service.runtime)
    assert [(s.id, s.domain, s.status) for s in shops(service)] == [(shop.id, woo.url, "active")]
