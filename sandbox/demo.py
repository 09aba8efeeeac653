"""``demo``: send a few signed Shopify orders to the running service and watch each one travel.

It registers a demo shop (sandbox provider) in the same database the service uses, posts
signed ``orders/paid`` deliveries over HTTP exactly as Shopify would, then prints every
transition of each order (received → ready → pushing → pushed → shipped) as it happens. Once the
first order is at the sandbox 3PL its street is corrected on the shop (``demo_edit``), and the
timeline shows the new address applied there before the parcel leaves.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import click
import requests
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from config import Settings
from integrations.shopify.webhooks import sign
from sandbox import demo_edit
from sandbox.shop import SANDBOX_LOCATION
from store.db import transaction
from store.models import Order, Shop
from store.shops import upsert_shop
from web.app_session import LINK_LIFETIME, signed_link

DEMO_SHOP = "relais-demo.myshopify.com"
CUSTOMERS = [
    ("Camille Martin", "12 rue de Rivoli", "Paris", "75001", "FR", "Colissimo"),
    ("Jonas Weber", "Friedrichstraße 43", "Berlin", "10117", "DE", "DHL Express"),
    ("Ava Thompson", "350 5th Ave", "New York", "10118", "US", "UPS Ground"),
]


def demo_order(order_id: int, customer: tuple[str, ...]) -> dict[str, Any]:
    """A paid order in the shape Shopify's ``orders/paid`` webhook sends."""
    name, street, city, zip_code, country, method = customer
    first, _, last = name.partition(" ")
    now = datetime.now(UTC).isoformat()
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{order_id % 10000}",
        "email": f"{first.lower()}@example.com",
        "phone": None,
        "financial_status": "paid",
        "cancelled_at": None,
        "created_at": now,
        "updated_at": now,
        "tags": "",
        "line_items": [
            {
                "id": order_id * 10 + 1,
                "sku": "TSHIRT-BLUE-M",
                "name": "T-shirt bleu - M",
                "quantity": 2,
                "current_quantity": 2,
                "requires_shipping": True,
                "gift_card": False,
            },
            {
                "id": order_id * 10 + 2,
                "sku": "MUG-RELAIS",
                "name": "Mug Relais",
                "quantity": 1,
                "current_quantity": 1,
                "requires_shipping": True,
                "gift_card": False,
            },
            {
                "id": order_id * 10 + 3,
                "sku": "",
                "name": "Gift card",
                "quantity": 1,
                "current_quantity": 1,
                "requires_shipping": False,
                "gift_card": True,
            },
        ],
        "shipping_address": {
            "name": name,
            "first_name": first,
            "last_name": last,
            "address1": street,
            "city": city,
            "zip": zip_code,
            "country_code": country,
            "phone": None,
        },
        "shipping_lines": [{"title": method, "code": method}],
    }


@click.command("demo")
@with_appcontext
@click.option("--url", default=None, help="The running service (default: RELAIS_PUBLIC_URL or http://127.0.0.1:5000).")
@click.option("--orders", "count", default=3, show_default=True)
@click.option("--timeout", default=90, show_default=True, help="Seconds to watch before giving up.")
@click.option("--platform", default="shopify", type=click.Choice(["shopify", "woocommerce"]), show_default=True)
@click.option("--fulfilment-service", is_flag=True, help="Shopify as a fulfilment service: requests, a cancellation.")
def demo(url: str | None, count: int, timeout: int, platform: str, fulfilment_service: bool) -> None:
    """Send signed sample orders to the running service and print each order's journey."""
    runtime = current_app.extensions["relais"]
    settings = runtime.settings
    base = (url or settings.public_url).rstrip("/")
    try:
        requests.get(f"{base}/healthz", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        raise click.ClickException(
            f"no Relais answering at {base} ({exc}); start it first (README, first command)"
        ) from None
    if platform == "woocommerce":
        from sandbox import demo_woocommerce

        demo_woocommerce.run(runtime, base, count, timeout)
        return
    if fulfilment_service:
        from sandbox import demo_fulfilment_service

        demo_fulfilment_service.run(runtime, base, count, timeout)
        return
    with transaction(runtime.sessions) as session:
        shop = session.execute(
            select(Shop).where(Shop.platform == "shopify", Shop.domain == DEMO_SHOP)
        ).scalar_one_or_none()
        if shop is None:
            # The demo shop writes its tracking back to the built-in sandbox shop (sandbox/shop.py).
            credentials = {"access_token": "shpat_demo", "sandbox_shop": True}  # nosec B105 # the stand-in shop's
            demo_settings = {"location_id": SANDBOX_LOCATION}
            shop = upsert_shop(session, runtime.vault, "shopify", DEMO_SHOP, credentials, "sandbox", {}, demo_settings)
            click.echo(f"registered demo shop {DEMO_SHOP} (id {shop.id}) with the sandbox provider")
        shop_id = shop.id
    ids, payloads = [], {}
    for i in range(count):
        order_id = 9_000_000_000_000_000_000 + random.randrange(10**12)  # nosec B311 # a demo order id
        payload = demo_order(order_id, CUSTOMERS[i % len(CUSTOMERS)])
        body = json.dumps(payload).replace("/", "\\/").encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Shop-Domain": DEMO_SHOP,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-API-Version": settings.shopify_api_version,
            "X-Shopify-Hmac-Sha256": sign(settings.shopify_api_secret, body),
        }
        response = requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10)
        click.echo(f"sent orders/paid {payload['name']} ({order_id}) → HTTP {response.status_code}")
        ids.append(str(order_id))
        payloads[str(order_id)] = payload

    def correct_address(order_id: str) -> None:  # the first order, once it is at the sandbox 3PL
        status = demo_edit.send_correction(base, settings, DEMO_SHOP, payloads[order_id])
        click.echo(f"sent orders/updated {payloads[order_id]['name']} (street corrected) → HTTP {status}")

    _watch(runtime, shop_id, ids, timeout, on_pushed={ids[0]: correct_address} if ids else None)
    print_settings_link(settings.with_(public_url=base), shop_id, DEMO_SHOP)


def print_settings_link(settings: Settings, shop_id: int, name: str) -> None:
    """The merchant's view of the demo orders, outside Shopify's admin: a signed link that expires."""
    link = signed_link(settings, shop_id)
    click.echo(f"settings page of {name} (valid {LINK_LIFETIME // 3600} h): {link}")


def _watch(runtime, shop_id: int, ids: list[str], timeout: int, on_pushed=None) -> None:  # type: ignore[no-untyped-def]
    """Print each order's timeline as it grows; ``on_pushed``: order id → called once it is pushed."""
    pending = dict(on_pushed or {})
    seen: dict[int, int] = {}
    done_states = {"shipped", "delivered", "failed", "cancelled", "held"}
    deadline = time.monotonic() + timeout
    finished: set[str] = set()
    while time.monotonic() < deadline:  # parcels and orders share `finished`: the break below ends it
        with runtime.sessions() as session:
            rows = session.scalars(
                select(Order).where(Order.shop_id == shop_id, Order.platform_order_id.in_(ids))
            ).all()
            for row in rows:
                for t in row.history[seen.get(row.id, 0) :]:
                    click.echo(f"  {t.at:%H:%M:%S} {row.name:<6} {t.to_state:<18} {t.reason}")
                seen[row.id] = len(row.history)
                if row.state == "pushed" and row.platform_order_id in pending:
                    pending.pop(row.platform_order_id)(row.platform_order_id)
                for s in row.shipments:
                    key = f"{row.id}:{s.provider_shipment_id}"
                    if key not in finished and s.tracking_number:
                        click.echo(f"  {'':8} {row.name:<6} parcel {s.carrier} {s.tracking_number} {s.tracking_url}")
                        finished.add(key)
                if row.state in done_states:
                    finished.add(row.platform_order_id)
        finished_orders = [i for i in ids if i in finished]
        if len(finished_orders) == len(ids):
            break
        time.sleep(0.5)
    states = {i: i in finished for i in ids}
    if all(states.values()):
        click.echo(
            "every order reached the warehouse and shipped; `./dev flask orders show <name>` tells the whole story"
        )
    else:
        click.echo(
            "some orders have not finished yet: is the worker running? `./dev flask orders list` shows where they are"
        )
