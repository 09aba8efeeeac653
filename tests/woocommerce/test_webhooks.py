"""The WooCommerce receiver: WooCommerce's own signature vector, raw-byte verification, the ping,
per-store secrets, and a dedup key that does not trust X-WC-Webhook-Delivery-ID."""

from __future__ import annotations

import json

from sqlalchemy import select

from integrations.woocommerce.webhooks import sign, verify
from sandbox.woocommerce.store import wp_json_encode
from store.db import transaction
from store.models import WebhookEvent
from store.shops import upsert_shop
from store.sync_models import ShopSync

SECRET = "Shop0One0Secret0000000000000000000000"
OTHER = "Shop0Two0Secret0000000000000000000000"


def add_store(runtime, url: str, secret: str) -> int:  # type: ignore[no-untyped-def]
    creds = {"consumer_key": "ck_x", "consumer_secret": "cs_x", "webhook_secret": secret}
    with transaction(runtime.sessions) as session:
        return upsert_shop(session, runtime.vault, "woocommerce", url, creds, "sandbox", {}).id


def headers(body: bytes, secret: str, topic: str = "order.updated", delivery: str = "d" * 32) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Signature": sign(secret, body),
        "X-WC-Webhook-Delivery-ID": delivery,
        "X-WC-Webhook-Source": "https://one.example/",
    }


def order_body(oid: int = 727, modified: str = "2026-11-20T10:00:00", status: str = "processing") -> bytes:
    return wp_json_encode(
        {
            "id": oid,
            "status": status,
            "date_modified_gmt": modified,
            "line_items": [],
            "shipping": {"address_1": "Straße 1 / Hof"},
        }
    )


def rows(runtime) -> list[WebhookEvent]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def test_woocommerces_published_vector_holds() -> None:
    assert sign("", b"secret") == "GBDo00G55h6IiV+6CxqivQPLbI//KzaOZm747971tPs="


def test_the_secret_is_entity_decoded_before_hashing_as_wordpress_does() -> None:
    assert sign("my_webhook_secret", b'{"id":123}') == "2EHghBOnf1hEUH0IrA1c2DC3Pq5bL/cG10o5lLSu1N8="
    assert sign("a&amp;b", b'{"id":123}') == "zFPLpIBufGMBAbLpbENMe4lF0ThpJg3AwslPSHHIXqg="
    assert sign("a&b", b'{"id":123}') == "zFPLpIBufGMBAbLpbENMe4lF0ThpJg3AwslPSHHIXqg="


def test_escaped_slashes_and_unicode_verify_on_the_raw_bytes_only() -> None:
    body = b'{"url":"https:\\/\\/shop.example\\/"}'
    assert sign("my_webhook_secret", body) == "mtkRQp2lUEaL0LGkTUxoKBspLqsDHgZQPiSSXLK58Ok="
    php = wp_json_encode({"name": "Jos\u00e9 / Ma\u00efa"})
    assert b"\\u00e9" in php and b"\\/" in php
    assert verify("k", php, sign("k", php))
    reserialised = json.dumps(json.loads(php)).encode()
    assert not verify("k", reserialised, sign("k", php))
    assert not verify("", php, sign("", php))  # an empty secret is never accepted


def test_a_signed_delivery_is_stored_with_its_exact_bytes_and_enqueued(client, runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_store(runtime, "https://one.example", SECRET)
    body = order_body()
    answer = client.post(f"/webhooks/woocommerce/{shop_id}", data=body, headers=headers(body, SECRET))
    assert answer.status_code == 200 and answer.json["status"] == "accepted"
    [event] = rows(runtime)
    assert event.body == body and event.source == "woocommerce" and event.topic == "order.updated"
    assert len(runtime.queue("webhooks")) == 1


def test_the_ping_is_answered_200_and_stored_nowhere(client, runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_store(runtime, "https://one.example", SECRET)
    answer = client.post(
        f"/webhooks/woocommerce/{shop_id}", data="webhook_id=142", content_type="application/x-www-form-urlencoded"
    )
    assert answer.status_code == 200 and answer.data == b""
    assert rows(runtime) == [] and len(runtime.queue("webhooks")) == 0


def test_a_body_signed_with_another_stores_secret_is_401_and_stores_nothing(client, runtime) -> None:  # type: ignore[no-untyped-def]
    one = add_store(runtime, "https://one.example", SECRET)
    add_store(runtime, "https://two.example", OTHER)
    body = order_body()
    assert client.post(f"/webhooks/woocommerce/{one}", data=body, headers=headers(body, OTHER)).status_code == 401
    unsigned = {k: v for k, v in headers(body, SECRET).items() if k != "X-WC-Webhook-Signature"}
    assert client.post(f"/webhooks/woocommerce/{one}", data=body, headers=unsigned).status_code == 401
    assert client.post("/webhooks/woocommerce/999", data=body, headers=headers(body, SECRET)).status_code == 404
    assert rows(runtime) == []


def test_a_store_without_a_webhook_secret_accepts_nothing(client, runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_store(runtime, "https://one.example", "")
    body = order_body()
    assert client.post(f"/webhooks/woocommerce/{shop_id}", data=body, headers=headers(body, "")).status_code == 401


def test_dedup_is_on_the_order_state_not_on_the_delivery_id(client, runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_store(runtime, "https://one.example", SECRET)
    url = f"/webhooks/woocommerce/{shop_id}"
    first, later = order_body(), order_body(modified="2026-11-20T10:00:05", status="cancelled")
    client.post(url, data=first, headers=headers(first, SECRET, "order.created", delivery="a" * 32))
    client.post(url, data=first, headers=headers(first, SECRET, "order.updated", delivery="b" * 32))
    # Same webhook within the same second: the same delivery id for a different state.
    client.post(url, data=later, headers=headers(later, SECRET, "order.updated", delivery="b" * 32))
    assert [e.topic for e in rows(runtime)] == ["order.created", "order.updated"]
    deleted = b'{"id":727}'
    for delivery in ("c" * 32, "c" * 32, "e" * 32):
        client.post(url, data=deleted, headers=headers(deleted, SECRET, "order.deleted", delivery=delivery))
    assert [e.topic for e in rows(runtime)][2:] == ["order.deleted", "order.deleted"]


def test_an_error_payload_is_acknowledged_and_told_to_the_merchant(client, runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_store(runtime, "https://one.example", SECRET)
    body = wp_json_encode(
        {
            "code": "woocommerce_rest_cannot_view",
            "message": "Sorry, you cannot view this resource.",
            "data": {"status": 401},
        }
    )
    answer = client.post(f"/webhooks/woocommerce/{shop_id}", data=body, headers=headers(body, SECRET))
    assert answer.status_code == 200 and rows(runtime) == []
    with runtime.sessions() as session:
        assert "reconnect the store" in session.get(ShopSync, shop_id).notice


def test_an_unhandled_topic_is_acknowledged_without_storing(client, runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_store(runtime, "https://one.example", SECRET)
    body = b'{"id":5,"date_modified_gmt":"2026-11-20T10:00:00"}'
    answer = client.post(f"/webhooks/woocommerce/{shop_id}", data=body, headers=headers(body, SECRET, "coupon.created"))
    assert answer.status_code == 200 and rows(runtime) == []
