"""``demo --platform woocommerce``: the same journey for a WooCommerce store.

A stand-in store (the test suite's fake WooCommerce, in this process, on plain HTTP: Relais signs
its calls with OAuth 1.0a as it would for a store without TLS) is registered as a shop with our
webhooks on it. Orders are placed on it and delivered as WooCommerce does (signed, ``\\/``
escapes); the service pushes them to the sandbox 3PL; the worker writes the tracking back to the
stand-in store as a customer note and completes the order, and the echo of that write is ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import click
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from integrations.woocommerce.connect import new_secret
from integrations.woocommerce.inventory import LOCATION
from integrations.woocommerce.webhooks import SUBSCRIBED_TOPICS
from store.db import transaction
from store.models import Shop, WebhookEvent
from store.shops import upsert_shop

DEMO_MARK = "demo"  # shop setting marking a demo run's stand-in store
ENDED = "demo_ended"  # status of a demo shop once its stand-in store has stopped (never polled)
CUSTOMERS = [
    ("Camille", "12 rue de Rivoli", "Paris", "75001", "FR"),
    ("Jonas", "Friedrichstraße 43", "Berlin", "10117", "DE"),
    ("Ava", "350 5th Ave", "New York", "10118", "US"),
]


def run(runtime: Any, base: str, count: int, timeout: int) -> None:
    """Register a stand-in store, place ``count`` orders on it, and watch them travel."""
    from sandbox.demo import _watch, print_settings_link
    from sandbox.woocommerce.store import FakeWooCommerce  # the stand-in store, for the demo only

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's request log is noise here
    store = FakeWooCommerce().start()
    secret = new_secret()
    stop = threading.Event()
    shop_id: int | None = None
    try:
        with transaction(runtime.sessions) as session:
            forget_earlier_demo_stores(session)
            credentials = {
                "consumer_key": store.key.consumer_key,
                "consumer_secret": store.key.consumer_secret,
                "webhook_secret": secret,
            }
            shop_id = upsert_shop(
                session,
                runtime.vault,
                "woocommerce",
                store.url,
                credentials,
                "sandbox",
                {},
                {"location_id": LOCATION, DEMO_MARK: True},
            ).id
        click.echo(f"stand-in WooCommerce store at {store.url} registered as shop {shop_id}")
        for topic in SUBSCRIBED_TOPICS:
            store.state.create_webhook(
                {"topic": topic, "delivery_url": f"{base}/webhooks/woocommerce/{shop_id}", "secret": secret}, 1
            )
        for sku in ("TSHIRT-BLUE-M", "MUG-RELAIS"):
            store.state.add_product(sku, stock=50)
        store.state.add_product("EBOOK-GUIDE", virtual=True, downloadable=True)
        ids = []
        for first, street, city, postcode, country in CUSTOMERS * (count // len(CUSTOMERS) + 1):
            if len(ids) == count:
                break
            lines = [("TSHIRT-BLUE-M", 2), ("MUG-RELAIS", 1), ("EBOOK-GUIDE", 1)]
            oid = store.state.create_order(
                lines, first_name=first, address_1=street, city=city, postcode=postcode, country=country
            )
            ids.append(str(oid))
        for (topic, status), oid in zip(_deliver(store), ids, strict=False):
            click.echo(f"store sent {topic} for order #{oid} (processing) → HTTP {status}")
        # Like WooCommerce's Action Scheduler: queued deliveries (our own writes' echoes) go out.
        threading.Thread(target=_keep_delivering, args=(store, stop), daemon=True).start()
        _watch(runtime, shop_id, ids, timeout)
        _show_store(runtime, shop_id, store, [int(i) for i in ids], deadline=time.monotonic() + min(20, timeout))
        print_settings_link(runtime.settings.with_(public_url=base), shop_id, f"the stand-in store {store.url}")
    finally:
        stop.set()
        store.stop()
        if shop_id is not None:
            # The stand-in store lives only as long as this command: its shop stops being polled
            # now, and the next demo run deletes it (the settings link above still opens it).
            with transaction(runtime.sessions) as session:
                session.execute(update(Shop).where(Shop.id == shop_id).values(status=ENDED))


def forget_earlier_demo_stores(session: Session) -> int:
    """Delete the shops of earlier WooCommerce demo runs (their stand-in stores are gone) with all
    their rows (every table's foreign key to shops cascades). Returns how many were deleted."""
    earlier = [
        shop.id
        for shop in session.scalars(select(Shop).where(Shop.platform == "woocommerce"))
        if (shop.settings or {}).get(DEMO_MARK)
    ]
    if earlier:
        session.execute(delete(Shop).where(Shop.id.in_(earlier)))
        click.echo(f"removed {len(earlier)} shop(s) left by earlier WooCommerce demo runs")
    return len(earlier)


def _deliver(store: Any) -> list[tuple[str, int]]:
    before = len(store.deliveries)
    store.deliver()
    return store.deliveries[before:]


def _keep_delivering(store: Any, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        store.deliver()


def _show_store(runtime: Any, shop_id: int, store: Any, ids: list[int], deadline: float) -> None:
    """What the merchant and the customer see on the store once the tracking is back."""
    while time.monotonic() < deadline and any(store.state.orders[i]["status"] != "completed" for i in ids):
        time.sleep(0.5)
    for oid in ids:
        order = store.state.orders[oid]
        notes = [n["note"] for n in store.state.notes.get(oid, []) if n["customer_note"]]
        click.echo(f"store order #{oid}: {order['status']}" + (f"; customer note: {notes[-1]}" if notes else ""))
    store.deliver()
    sent = sum(1 for topic, status in store.deliveries if topic == "order.updated" and status == 200)
    with runtime.sessions() as session:
        stored = session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.shop_id == shop_id, WebhookEvent.topic == "order.updated")
        )
    click.echo(f"{sent - stored} of {sent} order.updated deliveries were echoes of our own writes, ignored")
