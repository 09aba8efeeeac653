"""Shared pieces of the installable-app tests: the fake Shopify wired into the settings, session
tokens as App Bridge mints them, shops installed with expiring tokens, signed deliveries."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import requests

from config import Settings
from integrations.shopify.oauth import TokenSet
from integrations.shopify.webhooks import sign
from store.db import transaction
from store.installs import install_shopify
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_webhooks import body_of

API_KEY = "test-api-key"
# Shopify's client secrets are long; PyJWT warns (an error under pytest) below 32 bytes.
APP_SECRET = "test-shopify-app-secret-0123456789abcdef"
SHOP = "relais-test.myshopify.com"


def fake_shopify() -> Iterator[FakeShopifyAdmin]:
    fake = FakeShopifyAdmin()
    fake.oauth.client_id, fake.oauth.client_secret = API_KEY, APP_SECRET
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def app_settings(settings: Settings, fake: FakeShopifyAdmin) -> Settings:
    return settings.with_(
        shopify_api_key=API_KEY, shopify_api_secret=APP_SECRET, shopify_admin_url=fake.url + "/{shop}"
    )


def session_token(shop: str = SHOP, secret: str = APP_SECRET, lifetime: int = 60, **changes: Any) -> str:
    """An App Bridge ID token (HS256, one minute) for ``shop``."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": API_KEY,
        "sub": "42",
        "exp": now + lifetime,
        "nbf": now - 1,
        "iat": now - 1,
        "jti": uuid.uuid4().hex,
        "sid": "admin-session-1",
    }
    claims.update(changes)
    return jwt.encode(claims, secret, algorithm="HS256")


def install(
    runtime: Any,
    fake: FakeShopifyAdmin,
    shop: str = SHOP,
    provider_token: str = "sandbox-app-test",  # noqa: S107 - the sandbox account of the tests
    provider: str = "sandbox",
    fulfilment_mode: str = "order_webhooks",
) -> int:
    """A shop installed with a real expiring token pair from the fake, then given ``provider``
    (the sandbox unless told; "" keeps the install's own state: no provider). An app install
    makes a fulfilment-service shop; these tests use the order-webhook pipeline unless told
    (``fulfilment_mode="service"``; that mode has its own tests: test_fulfilment_service*)."""
    answer = fake.oauth._issue(shop, "test", expiring=True)
    tokens = TokenSet.from_answer(answer, time.time())
    with transaction(runtime.sessions) as session:
        row = install_shopify(session, runtime.vault, shop, tokens, "test")
        row.settings = {**row.settings, "fulfilment_mode": fulfilment_mode}
        if provider:
            row.provider = provider
            row.provider_options_enc = runtime.vault.seal({"token": provider_token})
        return row.id


def deliver(base_url: str, topic: str, payload: dict[str, Any], shop: str = SHOP, **headers: str) -> int:
    body = body_of(payload)
    sent = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Hmac-Sha256": sign(APP_SECRET, body),
        **headers,
    }
    return requests.post(f"{base_url}/webhooks/shopify", data=body, headers=sent, timeout=10).status_code
