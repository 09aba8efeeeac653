"""Input limits on every webhook receiver, tried as an attacker would (issue 11, item 5).

Each body below carries a valid signature (where the receiver has one), so it is the input limit,
not the signature check, that refuses it. Every refusal must be a 4xx ``{"error": reason}`` with
nothing stored; none may be a 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from integrations.woocommerce.webhooks import sign as woo_sign
from store.db import transaction
from store.models import WebhookEvent
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET
from tests.fakes.shopify_webhooks import headers_for

SHOP = "limits.myshopify.com"
WOO_SECRET = "Limits0Woo0Secret000000000000000000"
SHIPBOB_SECRET = "whsec_" + base64.b64encode(b"limits-shipbob-secret-0123456789").decode()

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"id": 1, "a": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001
HUGE_INTEGER = b'{"id": ' + b"9" * 10_000 + b"}"
LONG_INTEGER = b'{"id": ' + b"9" * 1_000 + b"}"  # under Python's own 4,300-digit limit: only ours refuses it
CESU8 = b'{"a":"\xed\xa0\x80"}'  # U+D800 encoded as if it were a character: invalid UTF-8
LONE_SURROGATE_ESCAPE = b'{"id": 1, "a": "\\ud800"}'
ATTACKS = {
    "deep array": DEEP,
    "deep object": DEEP_OBJECT,
    "10,000-digit integer": HUGE_INTEGER,
    "1,000-digit integer": LONG_INTEGER,
    "CESU-8 surrogate": CESU8,
    "escaped lone surrogate": LONE_SURROGATE_ESCAPE,
}


def stored(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(WebhookEvent))


def assert_json_refusal(response, status: int | None = None) -> None:  # type: ignore[no-untyped-def]
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data()[:200])
    if status is not None:
        assert response.status_code == status
    assert response.is_json and isinstance(response.get_json()["error"], str) and response.get_json()["error"]


@pytest.fixture
def shops(runtime) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shopify = upsert_shop(session, runtime.vault, "shopify", SHOP, {"access_token": "shpat_x"}, None, {})
        woo = upsert_shop(
            session,
            runtime.vault,
            "woocommerce",
            "https://limits.example",
            {"consumer_key": "ck_x", "consumer_secret": "cs_x", "webhook_secret": WOO_SECRET},
            None,
            {},
        )
        shipbob = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            "limits-shipbob.myshopify.com",
            {"access_token": "shpat_y"},
            "shipbob",
            {"token": "pat", "channel_id": "1", "webhook_secret": SHIPBOB_SECRET},
        )
        return {"shopify": shopify.id, "woocommerce": woo.id, "shipbob": shipbob.id}


def standard_webhook_headers(body: bytes, secret: str) -> dict[str, str]:
    """Standard Webhooks headers signed over the raw bytes (what ShipBob sends)."""
    msg_id, stamp = "msg_limits", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "x-webhook-topic": "order.shipped",
    }


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_signed_shopify_delivery_over_the_limits_is_a_json_400_and_stores_nothing(
    client, runtime, shops, attack: str
) -> None:  # type: ignore[no-untyped-def]
    body = ATTACKS[attack]
    response = client.post(
        "/webhooks/shopify", data=body, headers=headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
    )
    assert_json_refusal(response, 400)
    assert stored(runtime) == 0


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_signed_woocommerce_delivery_over_the_limits_is_a_json_400_and_stores_nothing(
    client, runtime, shops, attack: str
) -> None:  # type: ignore[no-untyped-def]
    body = ATTACKS[attack]
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Signature": woo_sign(WOO_SECRET, body),
        "X-WC-Webhook-Delivery-ID": "d" * 32,
    }
    response = client.post(f"/webhooks/woocommerce/{shops['woocommerce']}", data=body, headers=headers)
    assert_json_refusal(response, 400)
    assert stored(runtime) == 0


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_signed_provider_delivery_over_the_limits_is_a_json_400_and_stores_nothing(
    client, runtime, shops, attack: str
) -> None:  # type: ignore[no-untyped-def]
    body = ATTACKS[attack]
    for url in ("/webhooks/fulfilment/shipbob", f"/webhooks/fulfilment/shipbob/{shops['shipbob']}"):
        response = client.post(url, data=body, headers=standard_webhook_headers(body, SHIPBOB_SECRET))
        assert_json_refusal(response)
    assert stored(runtime) == 0


def test_deep_nesting_naming_no_shop_is_refused_before_any_signature_lookup(client, runtime) -> None:  # type: ignore[no-untyped-def]
    body = b'{"reference_id": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    response = client.post("/webhooks/fulfilment/shipbob", data=body, headers={"webhook-id": "msg_1"})
    assert_json_refusal(response, 400)
    assert "nests deeper" in response.get_json()["error"]
    assert stored(runtime) == 0


@pytest.mark.parametrize("shop_id", [2**63, 2**64, int("9" * 400)])
def test_a_woocommerce_shop_id_beyond_a_bigint_is_a_json_404_without_a_query(client, runtime, shop_id: int) -> None:  # type: ignore[no-untyped-def]
    body = b'{"id": 1}'
    headers = {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Signature": woo_sign(WOO_SECRET, body)}
    response = client.post(f"/webhooks/woocommerce/{shop_id}", data=body, headers=headers)
    assert_json_refusal(response, 404)
    assert stored(runtime) == 0


def test_the_largest_bigint_shop_id_still_reaches_the_receiver(client, runtime) -> None:  # type: ignore[no-untyped-def]
    body = b'{"id": 1}'
    headers = {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Signature": woo_sign(WOO_SECRET, body)}
    response = client.post(f"/webhooks/woocommerce/{2**63 - 1}", data=body, headers=headers)
    assert response.status_code == 404 and response.get_json() == {"error": "unknown store"}  # the view's own answer


def test_wrong_methods_and_unknown_webhook_addresses_answer_json(client, runtime) -> None:  # type: ignore[no-untyped-def]
    assert_json_refusal(client.get("/webhooks/shopify"), 405)
    assert_json_refusal(client.post("/webhooks/woocommerce/not-a-number", data=b"{}"), 404)
    assert_json_refusal(client.post("/webhooks/nowhere", data=b"{}"), 404)
    assert stored(runtime) == 0


def test_a_body_over_the_limit_is_a_json_413(client, runtime, shops) -> None:  # type: ignore[no-untyped-def]
    body = b'{"id": "' + b"x" * (runtime.settings.max_webhook_bytes + 10) + b'"}'
    response = client.post(
        "/webhooks/shopify", data=body, headers=headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
    )
    assert_json_refusal(response, 413)
    assert stored(runtime) == 0


def test_an_ordinary_signed_delivery_is_still_accepted(client, runtime, shops) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps(
        {
            "id": 820982911946154508,
            "name": "#1001",
            "note": "[[[ 12345678901234567890123456789012345678901234567890 ]]]",
        }
    ).encode()
    response = client.post(
        "/webhooks/shopify", data=body, headers=headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
    )
    assert response.status_code == 200, response.get_json()
    assert stored(runtime) == 1


# --- malformed HTTP, over a real socket -----------------------------------------------------------


def raw_exchange(url: str, request: bytes, close_write: bool = False) -> tuple[int, dict[str, Any]]:
    """Send bytes as they are (no client library tidies them) and read the status and JSON answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            head, _, rest = answer.partition(b"\r\n\r\n")
            length = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")]
            if length and len(rest) >= length[0]:
                break
    head, _, rest = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(rest) if rest.strip().startswith(b"{") else {"raw": rest.decode(errors="replace")}


def shopify_headers(body: bytes) -> bytes:
    lines = [f"{k}: {v}" for k, v in headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET).items()]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def live_shop(live):  # type: ignore[no-untyped-def]
    server, runtime = live
    with transaction(runtime.sessions) as session:
        upsert_shop(session, runtime.vault, "shopify", SHOP, {"access_token": "shpat_x"}, None, {})
    return server, runtime


def test_a_malformed_chunked_body_is_a_json_400_and_stores_nothing(live_shop) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live_shop
    body = b'{"id": 1}'
    request = (
        b"POST /webhooks/shopify HTTP/1.1\r\nHost: relais\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
        + shopify_headers(body)
        + b"\r\nZZ-not-hex\r\n"
        + body
        + b"\r\n0\r\n\r\n"
    )
    status, answer = raw_exchange(server.url, request)
    assert 400 <= status < 500 and answer.get("error"), (status, answer)
    assert stored(runtime) == 0


def test_a_body_shorter_than_its_content_length_is_a_json_400_and_stores_nothing(live_shop) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live_shop
    body = b'{"id": 1}'
    request = (
        b"POST /webhooks/shopify HTTP/1.1\r\nHost: relais\r\nContent-Length: 500\r\nConnection: close\r\n"
        + shopify_headers(body)
        + b"\r\n"
        + body
    )
    status, answer = raw_exchange(server.url, request, close_write=True)
    assert status == 400 and answer.get("error"), (status, answer)
    assert stored(runtime) == 0


def test_a_chunked_woocommerce_delivery_with_a_shop_id_beyond_a_bigint_is_a_json_404(live_shop) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live_shop
    request = (
        f"POST /webhooks/woocommerce/{2**64} HTTP/1.1\r\nHost: relais\r\nContent-Length: 2\r\nConnection: close\r\n"
        "Content-Type: application/json\r\n\r\n{}"
    ).encode()
    status, answer = raw_exchange(server.url, request)
    assert status == 404 and answer.get("error"), (status, answer)
    assert stored(runtime) == 0
