"""The demo's address edit through the whole service: the demo shop's order reaches the sandbox
3PL, the customer's corrected street arrives as a signed ``orders/updated``, and the sandbox holds
the new address before the parcel leaves (what ``./dev flask demo`` shows)."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from sqlalchemy import select

from integrations.shopify.webhooks import sign
from sandbox import demo_edit
from sandbox.demo import CUSTOMERS, DEMO_SHOP, demo_order
from sandbox.shop import SANDBOX_LOCATION
from store.db import transaction
from store.models import Order
from store.shops import upsert_shop
from tests.conftest import drain

ORDER = 9_000_000_000_123_456_789


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(sandbox_ship_delay=3600)  # the parcel waits: the edit comes first


def test_the_demo_s_corrected_street_is_applied_at_the_sandbox_3pl_once(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    with transaction(runtime.sessions) as session:
        credentials = {"access_token": "shpat_demo", "sandbox_shop": True}
        upsert_shop(
            session, runtime.vault, "shopify", DEMO_SHOP, credentials, "sandbox", {}, {"location_id": SANDBOX_LOCATION}
        )
    payload = demo_order(ORDER, CUSTOMERS[0])
    body = json.dumps(payload).encode()
    headers = {
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Shop-Domain": DEMO_SHOP,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Hmac-Sha256": sign(runtime.settings.shopify_api_secret, body),
        "Content-Type": "application/json",
    }
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    drain(runtime)
    assert demo_edit.send_correction(server.url, runtime.settings, DEMO_SHOP, payload) == 200
    drain(runtime)
    sandbox = requests.get(f"{server.url}/sandbox/api/orders", headers={"Authorization": "Bearer sandbox"}, timeout=10)
    [order] = sandbox.json()["orders"]
    assert order["recipient"]["address1"] == "12 rue de Rivoli, bâtiment B"
    with runtime.sessions() as session:
        row = session.scalars(select(Order)).one()
        assert row.state == "pushed"
        assert [t.reason for t in row.history if t.reason.startswith("edit applied")] == [
            "edit applied at sandbox: shipping address changed (now Paris, FR)"
        ]
