"""``demo --fulfilment-service``: the Shopify fulfilment-service journey against the stand-in shop.

A demo shop in fulfilment-service mode gets its service (and location) on the sandbox shop;
signed ``orders/paid`` deliveries only record the orders (nothing is pushed on a webhook in this
mode); then the merchant's fulfilment requests arrive as signed
``fulfillment_orders/fulfillment_request_submitted`` deliveries, Relais pushes and accepts them;
the last order's fulfilment is then cancelled by the merchant (a cancellation request), which
Relais accepts once the sandbox 3PL cancelled, or rejects if its parcel already left.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import replace

import click
import requests
from sqlalchemy import select

from integrations.shopify.webhooks import sign
from jobs.fulfilment_service import ensure_now
from sandbox import shop_fulfilment_service as stand_in
from sandbox.demo import CUSTOMERS, _watch, demo_order, print_settings_link
from sandbox.shop import SANDBOX_LOCATION
from store.db import transaction
from store.models import Order, Shop
from store.shops import upsert_shop

DEMO_SHOP = "relais-demo-service.myshopify.com"


def _post(runtime, base: str, topic: str, payload: dict) -> int:  # type: ignore[no-untyped-def]
    body = json.dumps(payload).replace("/", "\\/").encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": DEMO_SHOP,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-API-Version": runtime.settings.shopify_api_version,
        "X-Shopify-Hmac-Sha256": sign(runtime.settings.shopify_api_secret, body),
    }
    return requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code


def _wait_for(runtime, shop_id: int, order_id: str, states: set[str], timeout: float) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        with runtime.sessions() as session:
            state = (
                session.scalar(select(Order.state).where(Order.shop_id == shop_id, Order.platform_order_id == order_id))
                or ""
            )
        if state in states:
            return state
        time.sleep(0.3)
    return state


def run(runtime, base: str, count: int, timeout: int) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shop = session.execute(
            select(Shop).where(Shop.platform == "shopify", Shop.domain == DEMO_SHOP)
        ).scalar_one_or_none()
        if shop is None:
            credentials = {"access_token": "shpat_demo_service", "sandbox_shop": True}  # nosec B105 # stand-in's
            demo_settings = {"location_id": SANDBOX_LOCATION, "fulfilment_mode": "service"}
            shop = upsert_shop(session, runtime.vault, "shopify", DEMO_SHOP, credentials, "sandbox", {}, demo_settings)
            click.echo(f"registered demo shop {DEMO_SHOP} (id {shop.id}, fulfilment-service mode)")
        shop_id = shop.id
    # The service's callback and the stand-in shop are those of the running service at ``base``.
    runtime = replace(runtime, settings=runtime.settings.with_(public_url=base))
    click.echo(ensure_now(runtime, shop_id))
    ids: list[str] = []
    for i in range(count):
        order_id = 9_100_000_000_000_000_000 + random.randrange(10**12)  # nosec B311 # a demo order id
        payload = demo_order(order_id, CUSTOMERS[i % len(CUSTOMERS)])
        status = _post(runtime, base, "orders/paid", payload)
        click.echo(f"sent orders/paid {payload['name']} ({order_id}) → HTTP {status}: recorded, not pushed yet")
        ids.append(str(order_id))
    for order_id in ids:
        _wait_for(runtime, shop_id, order_id, {"received"}, 30)
        stand_in.request_fulfilment(runtime.redis, DEMO_SHOP, order_id)
        fo = {"id": stand_in.fo_id(order_id), "status": "open", "request_status": "submitted"}
        status = _post(
            runtime, base, "fulfillment_orders/fulfillment_request_submitted", {"submitted_fulfillment_order": fo}
        )
        click.echo(f"merchant requested fulfilment of {fo['id']} → HTTP {status}")
    last = ids[-1]
    deadline = time.monotonic() + timeout
    while stand_in.request_status(runtime.redis, DEMO_SHOP, last) == "SUBMITTED" and time.monotonic() < deadline:
        time.sleep(0.2)  # until Relais answered the request (accepted once the sandbox 3PL has the order)
    if stand_in.request_cancellation(runtime.redis, DEMO_SHOP, last):
        fo = {"id": stand_in.fo_id(last), "status": "in_progress", "request_status": "cancellation_requested"}
        status = _post(runtime, base, "fulfillment_orders/cancellation_request_submitted", {"fulfillment_order": fo})
        click.echo(f"merchant requested cancellation of {fo['id']} → HTTP {status}")
    _watch(runtime, shop_id, ids, timeout)
    while stand_in.request_status(runtime.redis, DEMO_SHOP, last).endswith("REQUESTED") and time.monotonic() < deadline:
        time.sleep(0.2)  # the cancellation is answered after the 3PL's reply (the order may have shipped first)
    for order_id in ids:
        answered = stand_in.request_status(runtime.redis, DEMO_SHOP, order_id)
        click.echo(f"  fulfilment order {stand_in.fo_id(order_id)}: {answered}")
    print_settings_link(runtime.settings.with_(public_url=base), shop_id, DEMO_SHOP)
