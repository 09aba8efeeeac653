"""Forged fulfilment-service notifications (``<callbackUrl>/fulfillment_order_notification``).

The ping carries no order data, but it makes Relais call Shopify: a forger must not be able to
make Relais poll (and load Shopify's API) for any shop. It is verified like a webhook, on the raw
bytes, with the app secret (or the previous one during a rotation); nothing is queued otherwise.
"""

from __future__ import annotations

import json

import pytest

from integrations.shopify.webhooks import sign
from store.db import transaction
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET

SHOP = "victim-service.myshopify.com"
URL = "/shopify/fulfilment-service/fulfillment_order_notification"


@pytest.fixture
def shop(runtime) -> int:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        return upsert_shop(
            session, runtime.vault, "shopify", SHOP, {"access_token": "t"}, "", {}, {"fulfilment_mode": "service"}
        ).id


def queued(runtime) -> int:  # type: ignore[no-untyped-def]
    return sum(len(runtime.queue(name)) for name in runtime.queue_names)


def post(client, body: bytes, signature: str):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json", "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Hmac-Sha256": signature}
    return client.post(URL, data=body, headers=headers)


@pytest.mark.parametrize(
    "signature",
    ["", "not-base64", sign("a-guessed-secret", b'{"kind":"FULFILLMENT_REQUEST"}'), sign(SHOPIFY_SECRET, b"{}")],
)
def test_a_notification_not_signed_over_its_own_bytes_with_the_app_secret_is_401_and_queues_nothing(
    client, runtime, shop, signature: str
) -> None:  # type: ignore[no-untyped-def]
    answer = post(client, b'{"kind":"FULFILLMENT_REQUEST"}', signature)
    assert answer.status_code == 401 and answer.get_json() == {"error": "invalid or missing HMAC signature"}
    assert queued(runtime) == 0


def test_a_notification_signed_with_the_previous_secret_is_accepted_during_a_rotation(runtime, shop) -> None:  # type: ignore[no-untyped-def]
    from app import create_app
    from jobs.runtime import build_runtime

    rotated = build_runtime(
        runtime.settings.with_(shopify_api_secret="the-new-secret", shopify_api_secret_previous=SHOPIFY_SECRET),
        runtime.redis,
    )
    body = json.dumps({"kind": "CANCELLATION_REQUEST"}).encode()
    try:
        answer = post(create_app(runtime=rotated).test_client(), body, sign(SHOPIFY_SECRET, body))
    finally:
        rotated.engine.dispose()  # its own pool: closed here, not by the garbage collector
    assert answer.status_code == 200 and queued(runtime) == 1
