"""Attack: make Relais call into its own network through a WooCommerce "store" address.

Before the guard, the connect and keys pages needed no login, took any http(s) host (loopback,
RFC 1918, link-local, the cloud metadata address), followed redirects, and showed the answer's
body or the exception's text back on the return page; the stored "shop" was then polled every 10
and 15 minutes. Here a production-configured Relais (no sandbox) is attacked through each door:
anonymous posts, forms without their CSRF token, store addresses on 127.0.0.1 (a real listener
that records every connection), 169.254.169.254, 10.0.0.1, ``localhost``, an IPv4-mapped IPv6
literal, a name whose DNS answer changes after the form accepted it, and a store that redirects.
Each must be refused with a plain reason, store nothing and reach nothing.

Addresses outside loopback are never connected to: a process audit hook records every
``socket.connect`` and the tests assert none was attempted (the guard refuses before connecting).
"""

from __future__ import annotations

import html
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis as redis_lib
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import func, select

from app import create_app
from config import load_settings
from integrations import fulfilment
from integrations.errors import ConfigError
from integrations.outbound import (
    NOT_HTTPS,
    PRIVATE_ADDRESS,
    REDIRECT,
    TIMED_OUT,
    TOO_LARGE,
    GuardedSession,
    OutboundError,
    OutboundPolicy,
)
from integrations.woocommerce.connect import SCOPE
from jobs.reconcile import reconcile_shop
from jobs.runtime import Runtime, build_runtime, set_runtime
from jobs.shop_setup import check_webhooks
from store.db import transaction
from store.models import Shop, WebhookEvent
from store.shops import upsert_shop
from store.sync_models import ShopSync
from store.woocommerce_models import WooConnectState
from tests.conftest import _reset_database, drain
from web.app_session import signed_link
from web.woocommerce_access import connect_link

SECRET_BODY = "INTERNAL-ONLY-ANSWER-7c1e"  # what an internal service would answer: must never be shown
PUBLIC_IP = "93.184.216.34"  # a public address the fake DNS gives; never connected to
SHIPBOB_OPTIONS = {"token": "pat", "channel_id": "1", "webhook_secret": "whsec_" + "A" * 32}
CK, CS = "ck_" + "a" * 40, "cs_" + "b" * 40
LEAKS = (SECRET_BODY, "Traceback", "Errno", "refused", "HTTPConnectionPool", "HTTPSConnectionPool", "Max retries", CK)

# --- every connect this process attempts, recorded (audit hooks cannot be removed: gate by flag)
_connects: list[Any] = []
_recording = threading.Event()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and _recording.is_set():
        _connects.append(args[1])


sys.addaudithook(_audit)


@pytest.fixture
def connects() -> Iterator[list[Any]]:
    _connects.clear()
    _recording.set()
    yield _connects
    _recording.clear()


def connected_to(connects: list[Any], host: str, port: int | None = None) -> list[Any]:
    return [a for a in connects if isinstance(a, tuple) and a[0] == host and (port is None or a[1] == port)]


# --- a local "internal service" that records every connection it accepts ----------------------
@dataclass
class Listener:
    answer: bytes
    hold: float = 0.0  # seconds to wait before answering
    hits: list[bytes] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        listener = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(5)
                try:
                    listener.hits.append(self.request.recv(65536))
                    time.sleep(listener.hold)
                    self.request.sendall(listener.answer)
                except OSError:
                    pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def http_answer(status: str, body: str, headers: str = "") -> bytes:
    data = body.encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n{headers}"
        "Connection: close\r\n\r\n"
    ).encode() + data


@pytest.fixture
def internal() -> Iterator[Listener]:
    server = Listener(http_answer("200 OK", '{"secret": "' + SECRET_BODY + '"}'))
    yield server
    server.stop()


# --- a production-configured Relais ------------------------------------------------------------
@dataclass
class Production:
    app: Flask
    runtime: Runtime

    def client(self):  # type: ignore[no-untyped-def]
        return self.app.test_client()

    def counts(self) -> tuple[int, int, int]:
        """Shops, connect states and inbox rows stored."""
        with self.runtime.sessions() as session:
            return (
                session.scalar(select(func.count()).select_from(Shop)),
                session.scalar(select(func.count()).select_from(WooConnectState)),
                session.scalar(select(func.count()).select_from(WebhookEvent)),
            )

    def queued(self) -> int:
        return sum(len(self.runtime.queue(name)) for name in self.runtime.queue_names)

    def notice(self, shop_id: int) -> str:
        with self.runtime.sessions() as session:
            row = session.get(ShopSync, shop_id)
            return row.notice if row else ""


@pytest.fixture
def production(settings, redis_url: str) -> Iterator[Production]:  # type: ignore[no-untyped-def]
    configured = settings.with_(
        environment="production", encryption_key=Fernet.generate_key().decode(), public_url="https://relais.example"
    )
    assert configured.outbound_allow_private  # the field says yes: production must refuse anyway
    runtime = build_runtime(configured, redis_lib.Redis.from_url(redis_url))
    runtime.redis.flushdb()
    _reset_database(runtime)
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    yield Production(app, runtime)
    runtime.redis.flushdb()
    runtime.engine.dispose()
    set_runtime(None)
    fulfilment.register("sandbox", "sandbox.provider:SandboxProvider")  # the rest of the suite runs in development


def open_page(client, link: str) -> tuple[Any, dict[str, str]]:  # type: ignore[no-untyped-def]
    """What a merchant's browser gets from a link: the page and its forms' hidden fields."""
    page = client.get(link.removeprefix("https://relais.example"))
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.get_data(as_text=True))
    return page, {name: html.unescape(value) for name, value in fields}


def plain(text: str) -> bool:
    return not any(leak in text for leak in LEAKS)


# --- the doors are closed to strangers --------------------------------------------------------
def test_anonymous_visitors_get_no_connect_page_no_keys_form_and_nothing_is_stored_or_fetched(
    production, internal, connects
) -> None:  # type: ignore[no-untyped-def]
    client = production.client()
    store = f"https://127.0.0.1:{internal.port}"
    keys = {"store_url": store, "consumer_key": CK, "consumer_secret": CS}
    answers = [
        client.get("/woocommerce/connect"),
        client.get("/woocommerce/keys"),
        client.post("/woocommerce/connect", data={"store_url": store}),
        client.post("/woocommerce/keys", data=keys),
        client.post("/woocommerce/keys", data={**keys, "g": "forged.token"}),
    ]
    assert [a.status_code for a in answers] == [401] * 5
    assert all("Relais cannot show this page" in a.get_data(as_text=True) for a in answers)
    assert all(a.headers["Content-Security-Policy"] == "frame-ancestors 'none'" for a in answers)
    assert production.counts() == (0, 0, 0) and production.queued() == 0
    assert internal.hits == [] and connected_to(connects, "127.0.0.1", internal.port) == []


def test_a_form_posted_without_its_csrf_token_or_with_another_links_is_refused(production, internal) -> None:  # type: ignore[no-untyped-def]
    client = production.client()
    _, mine = open_page(client, connect_link(production.runtime.settings))
    _, theirs = open_page(client, connect_link(production.runtime.settings))
    keys = {"store_url": f"https://127.0.0.1:{internal.port}", "consumer_key": CK, "consumer_secret": CS}
    missing = client.post("/woocommerce/keys", data={**keys, "g": mine["g"]})
    foreign = client.post("/woocommerce/keys", data={**keys, "g": mine["g"], "csrf_token": theirs["csrf_token"]})
    connect = client.post("/woocommerce/connect", data={"store_url": keys["store_url"], "g": mine["g"]})
    assert (missing.status_code, foreign.status_code, connect.status_code) == (403, 403, 403)
    assert "stale" in missing.get_data(as_text=True)
    assert production.counts() == (0, 0, 0) and internal.hits == []


def test_an_expired_link_and_a_shopify_shops_settings_link_open_nothing(production) -> None:  # type: ignore[no-untyped-def]
    settings = production.runtime.settings
    with transaction(production.runtime.sessions) as session:
        shopify = upsert_shop(session, production.runtime.vault, "shopify", "victim.myshopify.com", {}, None, {})
        shopify_id = shopify.id
    client = production.client()
    expired, _ = open_page(client, connect_link(settings, lifetime=-1))
    other = client.get(f"/woocommerce/keys?{signed_link(settings, shopify_id).partition('?')[2]}")
    assert expired.status_code == 401 and "expired" in expired.get_data(as_text=True)
    assert other.status_code == 403


def test_every_page_of_the_flow_refuses_to_be_framed(production) -> None:  # type: ignore[no-untyped-def]
    client = production.client()
    page, proof = open_page(client, connect_link(production.runtime.settings))
    refused = client.post("/woocommerce/keys", data={**proof, "store_url": "https://10.0.0.1"})
    back = client.get("/woocommerce/return?success=0&user_id=nothing")
    for answer in (page, refused, back):
        assert answer.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert page.status_code == 200 and 'name="csrf_token"' in page.get_data(as_text=True)


# --- the merchant-given address is refused before anything is stored -------------------------
def internal_addresses(port: int) -> list[tuple[str, str]]:
    return [
        (f"http://127.0.0.1:{port}", NOT_HTTPS),
        (f"https://127.0.0.1:{port}", PRIVATE_ADDRESS),
        ("https://169.254.169.254/", PRIVATE_ADDRESS),
        ("https://10.0.0.1/", PRIVATE_ADDRESS),
        (f"https://localhost:{port}", PRIVATE_ADDRESS),
        (f"https://[::ffff:127.0.0.1]:{port}", PRIVATE_ADDRESS),
        (f"https://2130706433:{port}", PRIVATE_ADDRESS),  # 127.0.0.1 written as one number
    ]


@pytest.mark.parametrize("form", ["keys", "connect"])
def test_internal_store_addresses_are_refused_by_both_forms_with_a_plain_reason_storing_and_reaching_nothing(
    production, internal, connects, form
) -> None:  # type: ignore[no-untyped-def]
    client = production.client()
    _, proof = open_page(client, connect_link(production.runtime.settings))
    for store_url, reason in internal_addresses(internal.port):
        data = {**proof, "store_url": store_url, "consumer_key": CK, "consumer_secret": CS}
        answer = client.post(f"/woocommerce/{form}", data=data)
        text = answer.get_data(as_text=True)
        assert answer.status_code == 400, store_url
        assert f"Relais will not connect to this store: {reason}" in html.unescape(text), store_url
        assert plain(text), store_url
    assert production.counts() == (0, 0, 0) and production.queued() == 0
    assert internal.hits == [] and nothing_inside_was_reached(connects, internal)


def nothing_inside_was_reached(connects: list[Any], internal: Listener) -> bool:
    return not (
        connected_to(connects, "10.0.0.1")
        or connected_to(connects, "169.254.169.254")
        or connected_to(connects, "127.0.0.1", internal.port)
        or connected_to(connects, "::1", internal.port)
        or connected_to(connects, PUBLIC_IP)
    )


def test_a_link_bound_to_one_store_cannot_be_used_for_another_address(production, internal) -> None:  # type: ignore[no-untyped-def]
    client = production.client()
    page, proof = open_page(client, connect_link(production.runtime.settings, "https://10.0.0.1"))
    assert "https://10.0.0.1" in page.get_data(as_text=True) and 'name="store_url"' not in page.get_data(as_text=True)
    answer = client.post(
        "/woocommerce/keys",
        data={**proof, "store_url": "https://shop.example", "consumer_key": CK, "consumer_secret": CS},
    )
    assert answer.status_code == 400 and PRIVATE_ADDRESS in answer.get_data(as_text=True)
    assert production.counts() == (0, 0, 0)


# --- DNS that changes after the form accepted the name -----------------------------------------
@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The machine's resolver, with names under ``.rebind.test`` answering what the test says
    (the outside world's DNS, faked at its boundary; every other name resolves as usual)."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".rebind.test"):
            return real(answers[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_name_that_turns_private_after_the_form_accepted_it_is_refused_when_connecting(
    production, internal, connects, dns
) -> None:  # type: ignore[no-untyped-def]
    name = "store.rebind.test"
    dns[name] = PUBLIC_IP
    client = production.client()
    _, proof = open_page(client, connect_link(production.runtime.settings))
    start = client.post("/woocommerce/connect", data={**proof, "store_url": f"https://{name}:{internal.port}"})
    assert start.status_code == 302  # public when the merchant typed it: on to the store's approval page
    state = re.search(r"user_id=([^&]+)", start.headers["Location"]).group(1)  # type: ignore[union-attr]

    dns[name] = "127.0.0.1"  # rebinding: the same name now points inside
    callback = client.post(
        "/woocommerce/callback",
        json={"key_id": 1, "user_id": state, "consumer_key": CK, "consumer_secret": CS, "key_permissions": SCOPE},
    )
    assert callback.status_code == 200  # the store's keys are stored; nothing is fetched in the callback
    assert internal.hits == [] and connected_to(connects, "127.0.0.1", internal.port) == []

    drain(production.runtime)  # the job checks the keys: the guard resolves again when connecting
    [shop_id] = [s.id for s in _shops(production)]
    notice = production.notice(shop_id)
    assert notice == f"Relais did not contact the store: {PRIVATE_ADDRESS}"
    back = client.get(f"/woocommerce/return?success=1&user_id={state}")
    assert PRIVATE_ADDRESS in back.get_data(as_text=True) and plain(back.get_data(as_text=True))
    assert internal.hits == [] and nothing_inside_was_reached(connects, internal)


def _shops(production: Production) -> list[Shop]:
    with production.runtime.sessions() as session:
        return list(session.scalars(select(Shop)))


def test_the_scheduled_polls_of_a_store_pointing_inside_are_refused_and_say_so_plainly(
    production, internal, connects, dns
) -> None:  # type: ignore[no-untyped-def]
    """A store row that points inside (stored before the guard, or its DNS changed since)."""
    dns["old.rebind.test"] = "127.0.0.1"
    stores = {
        "loopback": f"https://127.0.0.1:{internal.port}",
        "metadata": "https://169.254.169.254",
        "rfc1918": "https://10.0.0.1",
        "rebound": f"https://old.rebind.test:{internal.port}",
    }
    ids, vault = [], production.runtime.vault
    with transaction(production.runtime.sessions) as session:
        for domain in stores.values():
            credentials = {"consumer_key": CK, "consumer_secret": CS, "webhook_secret": "s" * 40}
            shop = upsert_shop(session, vault, "woocommerce", domain, credentials, "shipbob", SHIPBOB_OPTIONS)
            ids.append(shop.id)
    for shop_id in ids:
        assert reconcile_shop(shop_id) == "failed"
        assert production.notice(shop_id) == f"orders could not be reconciled: {PRIVATE_ADDRESS}"
        assert check_webhooks(shop_id) == "failed"
        assert production.notice(shop_id) == f"webhooks could not be checked: {PRIVATE_ADDRESS}"
    assert internal.hits == [] and nothing_inside_was_reached(connects, internal)


# --- redirects are refused whatever their target (private addresses allowed here) --------------
@pytest.fixture
def redirector(internal: Listener) -> Iterator[Listener]:
    target = f"http://127.0.0.1:{internal.port}/wp-json/wc/v3/orders"
    server = Listener(http_answer("302 Found", '{"moved": "' + SECRET_BODY + '"}', f"Location: {target}\r\n"))
    yield server
    server.stop()


def test_a_store_that_redirects_is_refused_and_the_redirect_is_not_followed(runtime, internal, redirector) -> None:  # type: ignore[no-untyped-def]
    app = create_app(runtime=runtime)
    client = app.test_client()
    _, proof = open_page(client, connect_link(runtime.settings))
    store = f"http://127.0.0.1:{redirector.port}"
    answer = client.post(
        "/woocommerce/keys", data={**proof, "store_url": store, "consumer_key": CK, "consumer_secret": CS}
    )
    assert answer.status_code == 303  # development allows a local store: the job finds out
    drain(runtime)
    with runtime.sessions() as session:
        [shop] = session.scalars(select(Shop)).all()
        notice = session.get(ShopSync, shop.id).notice
        assert shop.status == "connecting"
    assert notice == f"Relais did not contact the store: {REDIRECT}"
    back = client.get(answer.headers["Location"])
    assert REDIRECT in html.unescape(back.get_data(as_text=True)) and plain(back.get_data(as_text=True))
    assert len(redirector.hits) == 1 and internal.hits == []


# --- the guarded session itself -----------------------------------------------------------------
def resolver_for(*addresses: str):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    return resolve


def test_the_guard_connects_to_the_address_it_checked_and_keeps_the_name_as_host(internal) -> None:  # type: ignore[no-untyped-def]
    policy = OutboundPolicy(allow_private=True, https_only=False, resolver=resolver_for("127.0.0.1"))
    answer = GuardedSession(policy).get(f"http://store.example:{internal.port}/wp-json/")
    assert answer.status_code == 200 and SECRET_BODY in answer.text  # allowed here: reached the checked address
    assert f"Host: store.example:{internal.port}".encode() in internal.hits[0]


def test_a_name_with_one_private_address_among_public_ones_is_refused_before_any_connect(connects) -> None:  # type: ignore[no-untyped-def]
    policy = OutboundPolicy(resolver=resolver_for(PUBLIC_IP, "10.0.0.1"))
    with pytest.raises(OutboundError) as caught:
        GuardedSession(policy).get("https://store.example/wp-json/")
    assert str(caught.value) == PRIVATE_ADDRESS and not caught.value.transient
    assert connected_to(connects, PUBLIC_IP) == [] and connected_to(connects, "10.0.0.1") == []


def test_a_proxy_from_the_environment_is_not_used(internal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{internal.port}")
    with pytest.raises(OutboundError, match=PRIVATE_ADDRESS):
        GuardedSession(OutboundPolicy()).get("https://10.0.0.1/")
    assert internal.hits == []


def test_answers_are_size_capped_and_slow_answers_time_out() -> None:
    big = Listener(http_answer("200 OK", "x" * 5000))
    silent = Listener(http_answer("200 OK", "{}"), hold=3)  # accepts, reads, answers too late
    try:
        policy = OutboundPolicy(allow_private=True, https_only=False, max_bytes=1000, read_timeout=0.5)
        with pytest.raises(OutboundError, match=TOO_LARGE):
            GuardedSession(policy).get(f"http://127.0.0.1:{big.port}/")
        with pytest.raises(OutboundError, match=TIMED_OUT) as caught:
            GuardedSession(policy).get(f"http://127.0.0.1:{silent.port}/", timeout=30)
        assert caught.value.transient
    finally:
        big.stop()
        silent.stop()


def test_plain_http_is_refused_by_the_production_policy_before_resolving(connects) -> None:  # type: ignore[no-untyped-def]
    asked: list[str] = []
    policy = OutboundPolicy(resolver=lambda host, port: asked.append(host) or [])
    with pytest.raises(OutboundError, match="https://"):
        GuardedSession(policy).get("http://store.example/")
    assert asked == [] and connects == []


def test_production_refuses_to_start_with_private_store_addresses_allowed() -> None:
    env = {
        "RELAIS_ENV": "production",
        "SECRET_KEY": "a-production-secret-key-of-some-length",
        "RELAIS_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SHOPIFY_API_KEY": "key",
        "SHOPIFY_API_SECRET": "secret",
        "DATABASE_URL": "postgresql://db.internal/relais",
        "REDIS_URL": "redis://redis.internal:6379/0",
    }
    with pytest.raises(ConfigError, match="RELAIS_OUTBOUND_ALLOW_PRIVATE"):
        load_settings({**env, "RELAIS_OUTBOUND_ALLOW_PRIVATE": "1"})
    production = OutboundPolicy.from_settings(load_settings(env))
    assert (production.allow_private, production.https_only) == (False, True)
    development = load_settings({"RELAIS_OUTBOUND_ALLOW_PRIVATE": "0"})
    assert OutboundPolicy.from_settings(development).allow_private is False
    assert OutboundPolicy.from_settings(load_settings({})).allow_private is True
