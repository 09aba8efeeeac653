"""Redaction is complete and local (issue 11, item 4), tried against the whole running service.

A customer's order travels the whole journey (Shopify webhook → Relais → the sandbox 3PL, which
keeps the recipient → shipped → tracking written to the stand-in shop, kept in Redis), then
``customers/redact`` or ``shop/redact`` arrives. Afterwards every table of the database (the
sandbox's included) and every Redis value is searched for what named the customer or the shop.
"""

from __future__ import annotations

import contextlib
import json
import socket
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import JSON, LargeBinary, String, Text, func, select, text

from integrations.woocommerce.webhooks import sign as woo_sign
from jobs import privacy
from sandbox.models import SandboxBase, SandboxOrder
from store.db import transaction
from store.models import Base, Order, Shop, WebhookEvent
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "redact-me.myshopify.com"
OTHER = "stays.myshopify.com"
ANN = {
    "email": "ann.quill@redaction.example",
    "phone": "+15550001111",
    "name": "Annabel Quillfeather",
    "address1": "77 Umbrella Lane",
}
ZOE = {"email": "zoe.marsh@kept.example", "phone": "+15559998888", "name": "Zoe Marshwiggle", "address1": "3 Kept Road"}


def order_of(person: dict[str, str], order_id: int) -> dict[str, Any]:
    first, last = person["name"].split(" ")
    address = {
        "first_name": first,
        "last_name": last,
        "name": person["name"],
        "address1": person["address1"],
        "address2": "",
        "phone": person["phone"],
        "city": "Springfield",
        "zip": "12345",
        "province_code": "IL",
        "country_code": "US",
        "country": "United States",
        "company": None,
    }
    customer = {"id": order_id * 10, "email": person["email"], "phone": person["phone"], "first_name": first}
    customer["last_name"] = last
    return paid_order(
        order_id,
        email=person["email"],
        contact_email=person["email"],
        phone=person["phone"],
        customer=customer,
        shipping_address=address,
        billing_address=address,
    )


def deliver(url: str, topic: str, payload: dict[str, Any], shop: str = SHOP) -> None:
    body = body_of(payload)
    answer = requests.post(
        f"{url}/webhooks/shopify", data=body, headers=headers_for(shop, topic, body, SHOPIFY_SECRET), timeout=10
    )
    assert answer.status_code == 200, answer.text


def add_sandbox_shop(runtime, domain: str, account: str) -> int:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        credentials = {"access_token": "sandbox", "sandbox_shop": True}
        return upsert_shop(session, runtime.vault, "shopify", domain, credentials, "sandbox", {"token": account}).id


def store_unparseable(runtime, shop_id: int, body: bytes, key: str) -> None:  # type: ignore[no-untyped-def]
    """A delivery stored before the input limits existed (today's receiver refuses such bodies)."""
    with transaction(runtime.sessions) as session:
        session.add(
            WebhookEvent(
                source="shopify", delivery_key=key, shop_id=shop_id, topic="orders/paid", headers={}, body=body
            )
        )


def database_text(runtime) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(table.column, text) of every text-like value in every table, Relais' and the sandbox's."""
    with runtime.engine.connect() as conn:
        for table in [*Base.metadata.sorted_tables, *SandboxBase.metadata.sorted_tables]:
            columns = [c for c in table.c if isinstance(c.type, String | Text | JSON | LargeBinary)]
            for row in conn.execute(select(*columns)) if columns else ():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", errors="replace")
                    yield f"{table.name}.{column.name}", value if isinstance(value, str) else repr(value)


def redis_text(runtime) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(key, text) of every Redis value (compressed RQ fields decompressed too)."""
    redis = runtime.redis
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [redis.get(key) or b""]
        elif kind == "list":
            values = redis.lrange(key, 0, -1)
        elif kind == "hash":
            values = [v for pair in redis.hgetall(key).items() for v in pair]
        elif kind in ("set", "zset"):
            values = list(redis.smembers(key)) if kind == "set" else redis.zrange(key, 0, -1)
        elif kind == "stream":
            values = [v for _, fields in redis.xrange(key) for pair in fields.items() for v in pair]
        for value in values:
            with contextlib.suppress(zlib.error):
                value = zlib.decompress(value)
            yield key.decode(errors="replace"), value.decode("utf-8", errors="replace")


def found(runtime, words: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    lowered = [w.lower() for w in words]
    hits = [
        f"{where}: {w}"
        for where, value in [*database_text(runtime), *redis_text(runtime)]
        for w in lowered
        if w in value.lower()
    ]
    return sorted(set(hits))


def sandbox_recipients(runtime) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return [row.recipient for row in session.scalars(select(SandboxOrder).order_by(SandboxOrder.id))]


def test_after_customers_redact_the_customer_appears_in_no_table_and_no_redis_value(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    shop_id = add_sandbox_shop(runtime, SHOP, "redact-account")
    deliver(server.url, "orders/paid", order_of(ANN, 7301))
    deliver(server.url, "orders/paid", order_of(ZOE, 7302))
    deliver(server.url, "customers/data_request", {"customer": {"id": 73010, "email": ANN["email"]}})
    store_unparseable(
        runtime, shop_id, b'{"id": 7399, "email": "' + ANN["email"].encode() + b'", "x": \xed\xa0\x80', "u1"
    )
    drain(runtime)
    # The journey left copies everywhere: the sandbox's recipient, the stand-in shop's fulfilment.
    assert {r["name"] for r in sandbox_recipients(runtime)} == {ANN["name"], ZOE["name"]}
    assert runtime.redis.exists(f"relais:sandbox-shop:{SHOP}:7301")
    copies = {hit.split(":")[0] for hit in found(runtime, [ANN["address1"]])}
    assert {"orders.ship_to", "sandbox_orders.recipient", "data_exports.data", "webhook_events.body"} <= copies

    payload = {"customer": {"id": 73010, "email": ANN["email"], "phone": ANN["phone"]}, "orders_to_redact": [7301]}
    deliver(server.url, "customers/redact", payload)
    drain(runtime)

    assert found(runtime, list(ANN.values())) == []
    assert found(runtime, [ZOE["email"], ZOE["address1"]])  # the other customer's data is untouched
    assert {r["name"] for r in sandbox_recipients(runtime)} == {"", ZOE["name"]}
    assert not runtime.redis.exists(f"relais:sandbox-shop:{SHOP}:7301")
    with runtime.sessions() as session:
        ann = session.scalars(select(Order).where(Order.platform_order_id == "7301")).one()
        assert ann.ship_to["country_code"] == "US" and ann.contact == {"email": "", "phone": ""}


def test_a_stored_delivery_that_does_not_parse_is_redacted_on_its_raw_text(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    shop_id = add_sandbox_shop(runtime, SHOP, "raw-account")
    truncated = b'{"id": 7401, "email": "' + ANN["email"].encode() + b'", "shipping_address": {"address1": "77 Umb'
    cesu = b'{"id": 7402, "note": "\xed\xa0\x80", "phone": "' + ANN["phone"].encode() + b'"}'
    by_id_only = b'{"id": 7403, "note": "\xed\xa0\x80"}'
    someone_else = b'{"id": 7404, "email": "' + ZOE["email"].encode() + b'", '
    for key, body in (("t", truncated), ("c", cesu), ("i", by_id_only), ("z", someone_else)):
        store_unparseable(runtime, shop_id, body, key)
    payload = {"customer": {"id": 1, "email": ANN["email"], "phone": ANN["phone"]}, "orders_to_redact": [7403]}
    deliver(server.url, "customers/redact", payload)
    drain(runtime)
    with runtime.sessions() as session:
        bodies = {e.delivery_key: e.body for e in session.scalars(select(WebhookEvent))}
    assert bodies["t"] == b'{"id": "7401", "redacted": true}'
    assert bodies["c"] == b'{"id": "7402", "redacted": true}'
    assert bodies["i"] == b'{"id": "7403", "redacted": true}'
    assert bodies["z"] == someone_else
    assert found(runtime, [ANN["email"], ANN["phone"]]) == []


class OutboundRecorder:
    """Every name resolution and connection leaving this process, except to the test's own
    database and Redis; each is recorded and refused (nothing reaches the network)."""

    def __init__(self, allowed: set[tuple[str, int]]) -> None:
        self.allowed = allowed
        self.attempts: list[Any] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

        def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
            if (str(host), int(port or 0)) not in self.allowed:
                self.attempts.append(("resolve", host, port))
                raise socket.gaierror(socket.EAI_NONAME, "outbound name resolution refused by the test")
            return real_getaddrinfo(host, port, *args, **kwargs)

        def connect(sock, address):  # type: ignore[no-untyped-def]
            if sock.family in (socket.AF_INET, socket.AF_INET6) and tuple(address[:2]) not in self.allowed:
                self.attempts.append(("connect", address))
                raise ConnectionRefusedError("outbound connection refused by the test")
            return real_connect(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)


def _service_addresses(runtime) -> set[tuple[str, int]]:  # type: ignore[no-untyped-def]
    allowed = set()
    for url in (str(runtime.engine.url), runtime.settings.redis_url):
        parts = urlsplit(url.replace("+psycopg", ""))
        if parts.hostname:
            for host in {parts.hostname, "127.0.0.1", "localhost", "::1"}:
                allowed.add((host, parts.port or {"redis": 6379, "postgresql": 5432}.get(parts.scheme, 0)))
    return allowed


def test_a_redaction_makes_no_network_call_even_for_a_store_whose_adapter_would(  # type: ignore[no-untyped-def]
    runtime, client, monkeypatch
) -> None:
    with transaction(runtime.sessions) as session:
        creds = {
            "consumer_key": "ck_x",
            "consumer_secret": "cs_x",
            "webhook_secret": "Redaction0Secret0000000000000000",
        }
        shop = upsert_shop(
            session, runtime.vault, "woocommerce", "https://store.redaction-test.example", creds, None, {}
        )
        shop_id = shop.id
    # A WooCommerce order delivery: reading it through the adapter looks its products up at the store.
    order = {
        "id": 812,
        "number": "812",
        "status": "processing",
        "date_created_gmt": "2026-11-20T09:00:00",
        "date_modified_gmt": "2026-11-20T10:00:00",
        "billing": {"first_name": "Annabel", "last_name": "Quillfeather", "email": ANN["email"], "phone": ANN["phone"]},
        "shipping": {"first_name": "Annabel", "last_name": "Quillfeather", "address_1": ANN["address1"]},
        "line_items": [{"id": 1, "product_id": 55, "variation_id": 0, "sku": "", "quantity": 1, "name": "Mug"}],
        "shipping_lines": [],
    }
    body = json.dumps(order).encode()
    headers = {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Signature": woo_sign(creds["webhook_secret"], body)}
    assert client.post(f"/webhooks/woocommerce/{shop_id}", data=body, headers=headers).status_code == 200
    recorder = OutboundRecorder(_service_addresses(runtime))
    recorder.install(monkeypatch)
    with transaction(runtime.sessions) as session:
        request = WebhookEvent(
            source="shopify",
            delivery_key="redact-1",
            shop_id=shop_id,
            topic="customers/redact",
            headers={},
            body=json.dumps({"customer": {"id": 5, "email": ANN["email"]}, "orders_to_redact": []}).encode(),
        )
        session.add(request)
        session.flush()
        privacy.redact_customer(runtime, session, session.get(Shop, shop_id), request)
    assert recorder.attempts == []
    with runtime.sessions() as session:
        stored = session.scalars(select(WebhookEvent).where(WebhookEvent.topic == "order.updated")).one()
    assert stored.body == b'{"id": "812", "redacted": true}'


def test_shop_redact_leaves_nothing_of_the_shop_in_any_table_the_sandbox_or_redis(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    shop_id = add_sandbox_shop(runtime, SHOP, "gone-account")
    other_id = add_sandbox_shop(runtime, OTHER, "kept-account")
    deliver(server.url, "orders/paid", order_of(ANN, 7501))
    deliver(server.url, "orders/paid", order_of(ZOE, 7502), shop=OTHER)
    deliver(server.url, "customers/data_request", {"customer": {"id": 75010, "email": ANN["email"]}})
    drain(runtime)
    assert runtime.redis.keys(f"relais:sandbox-shop:{SHOP}:*")
    deliver(server.url, "app/uninstalled", {"id": 1})
    deliver(server.url, "shop/redact", {"shop_id": 1, "shop_domain": SHOP})
    drain(runtime)

    with runtime.engine.connect() as conn:
        left = {
            table.name: conn.execute(
                text(f"SELECT count(*) FROM {table.name} WHERE shop_id = :id"),  # noqa: S608 - names from metadata
                {"id": shop_id},
            ).scalar()
            for table in Base.metadata.sorted_tables
            if "shop_id" in table.c
        }
    assert {name: n for name, n in left.items() if n} == {}
    assert found(runtime, list(ANN.values())) == []
    assert runtime.redis.keys(f"relais:sandbox-shop:{SHOP}:*") == []
    with runtime.sessions() as session:
        references = session.scalars(select(SandboxOrder.reference)).all()
        assert references == [f"{other_id}-7502"]  # the other shop's copy stays
        assert session.scalar(select(func.count()).select_from(Order).where(Order.shop_id == other_id)) == 1
    assert runtime.redis.keys(f"relais:sandbox-shop:{OTHER}:*")
    # What still names the shop is the record that it was redacted, and the request itself.
    mentions = {where for where, value in database_text(runtime) if SHOP in value}
    assert mentions <= {
        "audit_log.shop_domain",
        "webhook_events.body",
        "webhook_events.headers",
        "webhook_events.delivery_key",
    }
