"""The drill's traffic: Shopify deliveries for a few hundred orders, and the provider's parcels.

Shopify's side: per order an ``orders/create`` (unpaid), an ``orders/paid`` (for half of them
with its ``orders/updated`` twin), for some an ``orders/cancelled``, for some a stale
``orders/updated`` (an ``updated_at`` older than the newest one), and re-sends of the same
webhook id; all shuffled and sent by several threads at a steady pace, signed exactly as
Shopify signs (base64 HMAC-SHA256 of the raw body with the app secret).
A sender treats anything but a 2xx within 5 s as a failure and sends the same delivery again
later, as Shopify does.

The provider's side: ``Shipper`` watches the ShipBob fake, ships what arrives (one or two
parcels with tracking; never an order the shop will cancel) and posts ShipBob's signed
``order.shipped`` webhooks to Relais, retrying non-2xx as ShipBob does.
"""

from __future__ import annotations

import itertools
import queue
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tests.fakes.shipbob import FakeShipBob
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOPIFY_TIMEOUT = 5.0  # Shopify counts a delivery failed when no 2xx comes within 5 s
RETRY_WAITS = (0.5, 1, 2, 4, 5)  # compressed from Shopify's schedule: the drill lasts minutes


@dataclass(frozen=True)
class DrillOrder:
    order_id: int
    cancelled: bool
    parcels: int


@dataclass(frozen=True)
class Delivery:
    order_id: int
    topic: str
    body: bytes
    webhook_id: str


@dataclass
class Tally:
    """What the senders did, shared by their threads (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sends: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # "200", "503", "timeout", "refused", …
    acknowledged: set[str] = field(default_factory=set)  # webhook ids answered 2xx
    retries: int = 0
    gave_up: list[str] = field(default_factory=list)

    def acknowledged_ids(self) -> set[str]:
        with self.lock:
            return set(self.acknowledged)

    def count(self, answer: str) -> None:
        with self.lock:
            self.sends += 1
            self.answers[answer] += 1


def plan_orders(count: int, rng: random.Random, first_id: int = 7_100_000_000) -> list[DrillOrder]:
    """``count`` orders: about 12% cancelled on the shop, about 30% shipped in two parcels."""
    return [
        DrillOrder(first_id + n, cancelled=rng.random() < 0.12, parcels=2 if rng.random() < 0.3 else 1)
        for n in range(count)
    ]


LOCATION = "gid://shopify/Location/64500000001"


def _versions(order: DrillOrder, name: str, lines: list[dict[str, Any]], rng: random.Random) -> list[Delivery]:
    """One order's deliveries: create (unpaid), paid, maybe cancelled, maybe a stale update."""

    def version(topic: str, minutes: float, **changes: Any) -> Delivery:
        payload = paid_order(order.order_id, name=name, line_items=lines, **changes)
        at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC) + timedelta(minutes=minutes)
        payload["updated_at"] = at.isoformat()
        return Delivery(order.order_id, topic, body_of(payload), str(uuid.uuid4()))

    found = [version("orders/create", 0, financial_status="pending"), version("orders/paid", 1)]
    if rng.random() < 0.5:  # Shopify sends orders/updated beside orders/paid for the same change
        found.append(version("orders/updated", 1))
    if order.cancelled:
        cancelled_at = datetime(2026, 11, 20, 10, 3, tzinfo=UTC).isoformat()
        found.append(version("orders/cancelled", 3, cancelled_at=cancelled_at, financial_status="refunded"))
        if rng.random() < 0.5:  # older than the cancel: must never revive the order
            found.append(version("orders/updated", 2, note="stale: before the cancel"))
    elif rng.random() < 0.25:  # older than the payment: must never un-pay it
        found.append(version("orders/updated", 0.5, financial_status="pending", note="stale"))
    return found


def plan_deliveries(
    orders: list[DrillOrder], shopify: FakeShopifyAdmin, rng: random.Random, repeat_share: float = 0.2
) -> tuple[list[Delivery], int]:
    """Every delivery, duplicates included, shuffled; and how many are re-sends of a webhook id.
    Each order is created on the fake Shopify too, so that its parcels have somewhere to go."""
    unique: list[Delivery] = []
    for n, order in enumerate(orders):
        fake = shopify.add_order(
            order.order_id, [("IPOD2008GREEN", 2, LOCATION), ("IPOD2008RED", 1, LOCATION)], name=f"#D{n}"
        )
        lines = [
            {
                "id": int(li.legacy_id),
                "sku": li.sku,
                "name": li.sku,
                "quantity": li.quantity,
                "current_quantity": li.quantity,
                "requires_shipping": True,
                "gift_card": False,
            }
            for li in fake.line_items
        ]
        unique.extend(_versions(order, f"#D{n}", lines, rng))
    repeats = [d for d in unique if rng.random() < repeat_share]
    deliveries = unique + repeats
    rng.shuffle(deliveries)
    return deliveries, len(repeats)


class Senders:
    """``threads`` senders sharing one queue, paced to ``rate`` deliveries a second in all."""

    def __init__(self, url: str, shop: str, secret: str, threads: int, rate: float, deadline: float) -> None:
        self.url, self.shop, self.secret = url, shop, secret
        self.threads, self.rate, self.deadline = threads, rate, deadline
        self.tally = Tally()
        self._queue: queue.Queue[Delivery] = queue.Queue()
        self._pace = threading.Lock()
        self._next_at = 0.0
        self._workers: list[threading.Thread] = []

    def start(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self._queue.put(delivery)
        self._next_at = time.monotonic()
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"sender-{n}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def join(self) -> None:
        for thread in self._workers:
            thread.join()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._workers)

    def _wait_turn(self) -> None:
        with self._pace:
            at = self._next_at
            self._next_at = max(at, time.monotonic()) + 1.0 / self.rate
        time.sleep(max(0.0, at - time.monotonic()))

    def _run(self) -> None:
        with requests.Session() as http:
            while True:
                try:
                    delivery = self._queue.get_nowait()
                except queue.Empty:
                    return
                self._wait_turn()
                self._deliver(http, delivery)

    def _deliver(self, http: requests.Session, delivery: Delivery) -> None:
        """Send until a 2xx, waiting longer after each failure (the same webhook id each time)."""
        for attempt in itertools.count():
            if attempt:
                with self.tally.lock:
                    self.tally.retries += 1
                time.sleep(RETRY_WAITS[min(attempt - 1, len(RETRY_WAITS) - 1)])
            headers = headers_for(self.shop, delivery.topic, delivery.body, self.secret, delivery.webhook_id)
            try:
                response = http.post(
                    f"{self.url}/webhooks/shopify", data=delivery.body, headers=headers, timeout=(2, SHOPIFY_TIMEOUT)
                )
            except requests.Timeout:
                self.tally.count("timeout")
            except requests.ConnectionError:
                self.tally.count("refused")
            else:
                self.tally.count(str(response.status_code))
                if 200 <= response.status_code < 300:
                    with self.tally.lock:
                        self.tally.acknowledged.add(delivery.webhook_id)
                    return
            if time.monotonic() > self.deadline:
                with self.tally.lock:
                    self.tally.gave_up.append(delivery.webhook_id)
                return


class Shipper:
    """The warehouse: ships what ShipBob holds and tells Relais by signed webhook."""

    def __init__(
        self, fake: FakeShipBob, url: str, secret: str, orders: list[DrillOrder], shop_id: int, deadline: float
    ) -> None:
        self.fake, self.url, self.secret, self.deadline = fake, url, secret, deadline
        self.plan = {f"{shop_id}-{o.order_id}": o for o in orders}
        self.shipped: dict[str, list[dict[str, Any]]] = {}  # reference → its parcels
        self.answers: Counter[str] = Counter()
        self.retries = 0
        self.unsent: list[int] = []
        self._seen: dict[int, float] = {}
        self._lock = threading.Lock()
        self._outbox: queue.Queue[tuple[int, str]] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._ship_loop, name="shipper", daemon=True)]
        self._threads += [threading.Thread(target=self._send_loop, name=f"hook-{n}", daemon=True) for n in range(3)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def parcels(self) -> int:
        return sum(len(p) for p in self.shipped_now().values())

    def shipped_now(self) -> dict[str, list[dict[str, Any]]]:
        """A copy of what has shipped so far (the ship loop adds to it)."""
        with self._lock:
            return dict(self.shipped)

    def pending(self) -> int:
        return self._outbox.qsize()

    def _ship_loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for ref, order in self.fake.references().items():
                planned = self.plan.get(ref)
                if planned is None or planned.cancelled or ref in self.shipped or order["status"] != "Processing":
                    continue
                first_seen = self._seen.setdefault(int(order["id"]), now)
                if now - first_seen < 1.0:  # a second in the warehouse before the label
                    continue
                parcels = self.fake.ship(int(order["id"]), parcels=planned.parcels)
                with self._lock:
                    self.shipped[ref] = parcels
                for parcel in parcels:
                    self._outbox.put((int(parcel["id"]), "msg_" + uuid.uuid4().hex))
            self._stop.wait(0.5)

    def _send_loop(self) -> None:
        with requests.Session() as http:
            while not (self._stop.is_set() and self._outbox.empty()):
                try:
                    shipment_id, msg_id = self._outbox.get(timeout=0.5)
                except queue.Empty:
                    continue
                self._send(http, shipment_id, msg_id)

    def _send(self, http: requests.Session, shipment_id: int, msg_id: str) -> None:
        for attempt in itertools.count():
            if attempt:
                self.retries += 1
                time.sleep(RETRY_WAITS[min(attempt - 1, len(RETRY_WAITS) - 1)])
            headers, body = self.fake.webhook_delivery("order.shipped", shipment_id, self.secret, webhook_id=msg_id)
            try:
                response = http.post(
                    f"{self.url}/webhooks/fulfilment/shipbob", data=body, headers=headers, timeout=(2, SHOPIFY_TIMEOUT)
                )
            except requests.Timeout:
                self.answers["timeout"] += 1
            except requests.ConnectionError:
                self.answers["refused"] += 1
            else:
                self.answers[str(response.status_code)] += 1
                if 200 <= response.status_code < 300:
                    return
            if time.monotonic() > self.deadline:
                self.unsent.append(shipment_id)
                return
