"""Shopify's proofs, checked against Shopify's own published vectors (reference/shopify.md §10)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from integrations.shopify.auth import (
    SessionTokenError,
    canonical_query,
    query_hmac,
    timestamp_fresh,
    valid_shop,
    verify_query,
    verify_session_token,
)
from integrations.shopify.webhooks import sign, verify

API_KEY = "test-api-key"
OLD_SECRET = "previous-app-secret-0123456789abcdef"
SECRET = "test-shopify-app-secret-0123456789abcdef"  # PyJWT warns under 32 bytes; Shopify's are longer


def session_token(secret: str = SECRET, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://test-shop.myshopify.com/admin",
        "dest": "https://test-shop.myshopify.com",
        "aud": API_KEY,
        "sub": "1",
        "exp": now + 60,
        "nbf": now,
        "iat": now,
        "jti": "4321",
        "sid": "abc123",
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm="HS256")


def test_shopifys_documented_query_vector_holds() -> None:
    params = {"shop": "some-shop.myshopify.com", "code": "a94a110d86d2452eb3e2af4cfb8a3828", "timestamp": "1337178173"}
    assert (
        canonical_query(params)
        == "code=a94a110d86d2452eb3e2af4cfb8a3828&shop=some-shop.myshopify.com&timestamp=1337178173"
    )
    expected = "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"
    assert query_hmac("hush", params) == expected
    assert verify_query(["hush"], {**params, "hmac": expected})


def test_the_js_librarys_vector_with_spaces_signed_as_percent_20_holds() -> None:
    timestamp = str(int(time.time()) - 60)
    signed = (
        "code=some%20code%20goes%20here&shop=the%20shop%20URL"
        f"&state=some%20nonce%20passed%20from%20auth&timestamp={timestamp}"
    )
    expected = hmac.new(b"my super secret key", signed.encode(), hashlib.sha256).hexdigest()
    params = {
        "code": "some code goes here",
        "shop": "the shop URL",
        "state": "some nonce passed from auth",
        "timestamp": timestamp,
        "hmac": expected,
    }
    assert verify_query(["my super secret key"], params)
    assert timestamp_fresh(timestamp, time.time())


def test_ampersand_and_equals_are_escaped_as_urlsearchparams_does() -> None:
    # The Python library would sign "a=1%26b=2&c%3D3%26d=4"; Shopify's JS library (our form) escapes "=" too.
    assert canonical_query({"a": "1&b=2", "c=3&d": "4"}) == "a=1%26b%3D2&c%3D3%26d=4"


def test_a_base64_host_ending_in_equals_is_percent_encoded() -> None:
    assert canonical_query({"host": "YWRtaW4=", "shop": "a.myshopify.com"}) == "host=YWRtaW4%3D&shop=a.myshopify.com"


def test_a_tampered_query_or_another_secret_does_not_verify() -> None:
    params = {"shop": "some-shop.myshopify.com", "code": "a94a110d86d2452eb3e2af4cfb8a3828", "timestamp": "1337178173"}
    good = query_hmac("hush", params)
    assert not verify_query(["hush"], {**params, "code": "other", "hmac": good})
    assert not verify_query(["not-hush"], {**params, "hmac": good})
    assert verify_query(["not-hush", "hush"], {**params, "hmac": good})  # the previous secret still works
    assert not verify_query(["hush"], params)  # no hmac at all


def test_shopifys_webhook_vector_holds() -> None:
    assert sign("test_secret_key", b'{"foo": "bar"}') == "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
    assert verify(["test_secret_key"], b'{"foo": "bar"}', "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=")


@pytest.mark.parametrize(
    "shop",
    [
        "evil.com",
        "x.myshopify.com.evil.com",
        "https://x.myshopify.com",
        "x.myshopify.com/admin",
        "-x.myshopify.com",
        "",
    ],
)
def test_only_a_myshopify_hostname_is_a_shop(shop: str) -> None:
    assert valid_shop(shop) is None


def test_a_shop_hostname_is_lower_cased() -> None:
    assert valid_shop("My-Shop.MyShopify.com") == "my-shop.myshopify.com"


def test_a_timestamp_older_than_ninety_seconds_is_stale() -> None:
    now = time.time()
    assert not timestamp_fresh(str(int(now) - 91), now)
    assert not timestamp_fresh(str(int(now) + 91), now)
    assert not timestamp_fresh("soon", now)


def test_a_valid_session_token_names_its_shop_and_session() -> None:
    token = verify_session_token(session_token(), API_KEY, [SECRET])
    assert (token.shop, token.session_id, token.user) == ("test-shop.myshopify.com", "abc123", "1")


def test_a_session_token_signed_with_the_previous_secret_is_accepted() -> None:
    assert verify_session_token(session_token(OLD_SECRET), API_KEY, [SECRET, OLD_SECRET]).shop


def test_app_bridges_slightly_future_nbf_is_tolerated() -> None:
    assert verify_session_token(session_token(nbf=int(time.time()) + 5), API_KEY, [SECRET]).shop


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: session_token(exp=int(time.time()) - 30), id="expired"),
        pytest.param(lambda: session_token(nbf=int(time.time()) + 60), id="not yet valid"),
        pytest.param(lambda: session_token(aud="another-app"), id="another app"),
        pytest.param(lambda: session_token(secret="another-app-secret-0123456789abcdef"), id="another secret"),
        pytest.param(lambda: session_token(dest="https://other-shop.myshopify.com"), id="iss and dest differ"),
        pytest.param(
            lambda: session_token(iss="https://evil.com/admin", dest="https://evil.com"), id="not a shopify shop"
        ),
        pytest.param(lambda: session_token(dest=None), id="no dest"),
        pytest.param(
            lambda: jwt.encode({"dest": "https://test-shop.myshopify.com"}, key=None, algorithm="none"), id="alg none"
        ),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
    ],
)
def test_a_bad_session_token_is_refused(token: Callable[[], str]) -> None:
    # Built when the test runs: a token made at collection time could become valid (nbf) meanwhile.
    with pytest.raises(SessionTokenError):
        verify_session_token(token(), API_KEY, [SECRET])
