"""Fixtures for the WooCommerce tests: a fake store (HTTPS by default), the service wired to it.

TLS is real: a self-signed certificate for 127.0.0.1 that the fake serves and Relais' HTTP
session trusts, because WooCommerce only takes Basic or query-string keys over TLS and only posts
keys to an ``https://`` callback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app import create_app
from integrations.woocommerce.webhooks import SUBSCRIBED_TOPICS
from jobs.runtime import Runtime, build_runtime, set_runtime
from sandbox.woocommerce.store import FakeWooCommerce
from store.db import transaction
from store.models import Order, Shop, WebhookEvent
from store.shops import upsert_shop
from tests.conftest import _reset_database
from tests.fakes.tls import Certificate, make_certificate

WEBHOOK_SECRET = "Relais0webhook0secret0for0tests0x"
SANDBOX_TOKEN = "woo-sandbox-account"


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def woo_options() -> dict[str, Any]:
    """Override in a test module to change how the fake store behaves."""
    return {}


@pytest.fixture
def woo(certificate: Certificate, woo_options: dict[str, Any]) -> Iterator[FakeWooCommerce]:
    plain = woo_options.pop("plain_http", False)
    store = FakeWooCommerce(ca_bundle=str(certificate.cert_path), **woo_options)
    store.start(None if plain else certificate)
    yield store
    store.stop()


@dataclass
class Service:
    url: str
    runtime: Runtime
    shop_id: int = 0

    def shop(self) -> Shop:
        with self.runtime.sessions() as session:
            return session.get(Shop, self.shop_id)

    def orders(self) -> list[Order]:
        with self.runtime.sessions() as session:
            rows = session.scalars(select(Order).where(Order.shop_id == self.shop_id).order_by(Order.id)).all()
            for row in rows:
                _ = row.history, row.shipments, row.lines, row.attempts
            return list(rows)

    def order(self, platform_id: int) -> Order:
        return next(o for o in self.orders() if o.platform_order_id == str(platform_id))

    def inbox(self) -> int:
        """WooCommerce deliveries stored (the 3PL's own webhooks are in the same inbox)."""
        with self.runtime.sessions() as session:
            return session.scalar(
                select(func.count()).select_from(WebhookEvent).where(WebhookEvent.source == "woocommerce")
            )

    def provider_orders(self, token: str = SANDBOX_TOKEN) -> list[dict[str, Any]]:
        """Orders at the sandbox 3PL (``sandbox``: the account of shops connected without options)."""
        answer = self.runtime.http.get(
            f"{self.url}/sandbox/api/orders", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        return answer.json()["orders"]


def trust(runtime: Runtime, certificate: Certificate) -> None:
    """Relais' HTTP session trusts the test certificate (and not REQUESTS_CA_BUNDLE, which would win)."""
    runtime.http.verify = str(certificate.cert_path)
    runtime.http.trust_env = False


@pytest.fixture
def service(live, certificate: Certificate) -> Service:  # type: ignore[no-untyped-def]
    server, runtime = live
    trust(runtime, certificate)
    return Service(server.url, runtime)


def register(service: Service, woo: FakeWooCommerce, *, webhooks: bool = True, **settings: Any) -> int:
    """The fake store as a registered shop with its webhooks pointing at the service."""
    with transaction(service.runtime.sessions) as session:
        shop = upsert_shop(
            session,
            service.runtime.vault,
            "woocommerce",
            woo.url,
            {
                "consumer_key": woo.key.consumer_key,
                "consumer_secret": woo.key.consumer_secret,
                "webhook_secret": WEBHOOK_SECRET,
            },
            "sandbox",
            {"token": SANDBOX_TOKEN},
            settings,
        )
        service.shop_id = shop.id
    if webhooks:
        for topic in SUBSCRIBED_TOPICS:
            woo.state.create_webhook(
                {
                    "topic": topic,
                    "delivery_url": f"{service.url}/webhooks/woocommerce/{shop.id}",
                    "secret": WEBHOOK_SECRET,
                },
                1,
            )
    return service.shop_id


class TlsServer:
    """The service over HTTPS on 127.0.0.1 (WooCommerce posts keys only to https callbacks)."""

    def __init__(self, certificate: Certificate) -> None:
        self.holder: dict[str, Any] = {}
        self._server = make_server(
            "127.0.0.1", 0, self._dispatch, threaded=True, ssl_context=certificate.server_context()
        )
        self.url = f"https://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.holder["app"](environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def tls_service(settings, redis_url: str, certificate: Certificate) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    server = TlsServer(certificate)
    runtime = build_runtime(settings.with_(public_url=server.url), redis_lib.Redis.from_url(redis_url))
    runtime.redis.flushdb()
    _reset_database(runtime)
    trust(runtime, certificate)
    server.holder["app"] = create_app(runtime=runtime)
    yield Service(server.url, runtime)
    server.stop()
    runtime.redis.flushdb()
    runtime.engine.dispose()
    set_runtime(None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow_warehouse: the sandbox 3PL keeps orders unshipped for an hour")
