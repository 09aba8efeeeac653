"""The REST v3 client against the fake store: auth ladder, paging, retries, named errors, and at
most two requests in flight per store."""

from __future__ import annotations

import threading

import pytest
import requests

from integrations.errors import AuthError, InvalidRequestError, NotFoundError, RetryableError
from integrations.outbound import REDIRECT, OutboundPolicy, StoreUnreachable
from integrations.woocommerce.auth import oauth_base_string, oauth_params
from integrations.woocommerce.client import StoreBlocked, WooClient

DEVELOPMENT = OutboundPolicy(allow_private=True, https_only=False)  # the fake store is on 127.0.0.1


def client_for(woo, certificate, redis=None, **kw) -> WooClient:  # type: ignore[no-untyped-def]
    http = requests.Session()
    http.verify, http.trust_env = str(certificate.cert_path), False
    kw.setdefault("policy", DEVELOPMENT)
    return WooClient(woo.url, woo.key.consumer_key, woo.key.consumer_secret, http, redis=redis, backoff=0.01, **kw)


def modes(woo) -> list[str]:  # type: ignore[no-untyped-def]
    return [mode for _, _, mode in woo.log]


def test_oauth_matches_the_reference_vector() -> None:
    params = oauth_params(
        "GET",
        "http://example.com/wp-json/wc/v3/orders",
        {"per_page": "100"},
        "ck_test",
        "cs_test",
        nonce="0123456789abcdef0123456789abcdef",
        timestamp=1700000000,
    )
    assert oauth_base_string("GET", "http://example.com/wp-json/wc/v3/orders", params) == (
        "GET&http%3A%2F%2Fexample.com%2Fwp-json%2Fwc%2Fv3%2Forders&oauth_consumer_key%3Dck_test%26oauth_nonce%3D"
        "0123456789abcdef0123456789abcdef%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1700000000"
        "%26per_page%3D100"
    )
    assert params["oauth_signature"] == "GwH7x6s/WmOjFDn8My1bz/Kj8owTH3+g6MMjFQu5Fhw="


def test_an_https_store_is_called_with_basic_auth(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    woo.state.create_order([("A", 1)])
    assert len(client_for(woo, certificate).get("orders")) == 1
    assert modes(woo) == ["basic"]


@pytest.mark.parametrize("woo_options", [{"strip_authorization": True}])
def test_a_host_stripping_authorization_falls_back_to_query_keys_and_remembers(woo, certificate, runtime) -> None:  # type: ignore[no-untyped-def]
    woo.state.create_order([("A", 1)])
    client = client_for(woo, certificate, redis=runtime.redis)
    assert len(client.get("orders")) == 1
    assert modes(woo) == ["anonymous", "query"]  # refused as anonymous (nothing ran), then keys in the query
    client_for(woo, certificate, redis=runtime.redis).get("orders")
    assert modes(woo)[-1] == "query" and len(woo.log) == 3  # the next client starts with what worked


@pytest.mark.parametrize("woo_options", [{"plain_http": True}])
def test_a_plain_http_store_is_called_with_oauth_and_each_nonce_once(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    woo.state.create_order([("A", 1)])
    client = client_for(woo, certificate)
    client.get("orders")
    client.put(f"orders/{next(iter(woo.state.orders))}", {"status": "on-hold"})
    assert modes(woo) == ["oauth", "oauth"]
    assert len(woo.key.nonces) == 2


@pytest.mark.parametrize("woo_options", [{"behind_proxy": True}])
def test_a_store_behind_a_tls_proxy_gets_oauth_signed_over_its_http_address(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    woo.state.create_order([("A", 1)])
    assert len(client_for(woo, certificate).get("orders")) == 1
    assert modes(woo) == ["anonymous", "anonymous", "oauth"]


def test_a_wrong_secret_is_an_auth_error_naming_wooCommerces_reason(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    client = client_for(woo, certificate)
    client.consumer_secret = "cs_" + "0" * 40
    with pytest.raises(AuthError, match="Consumer secret is invalid"):
        client.get("orders")


def test_a_key_without_the_rights_is_an_auth_error_that_says_what_to_fix(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    client = client_for(woo, certificate)
    client.consumer_key = "ck_" + "1" * 40  # unknown key: WooCommerce carries on anonymous
    with pytest.raises(AuthError, match=r"woocommerce_rest_cannot_view.*manage_woocommerce"):
        client.get("orders")


def test_an_html_page_from_a_firewall_is_named_as_such(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    woo.fail_next(403, html=True)
    with pytest.raises(StoreBlocked, match="firewall or security plugin"):
        client_for(woo, certificate).get("orders")


def test_429_and_503_are_retried_with_backoff_honouring_retry_after(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    waits: list[float] = []
    woo.fail_next(429, headers={"Retry-After": "2"})
    woo.fail_next(503, html=True)
    assert client_for(woo, certificate, sleep=waits.append).get("orders") == []
    assert len(waits) == 2 and 2 <= waits[0] < 2.1


def test_a_create_whose_answer_failed_is_not_sent_twice(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    oid = woo.state.create_order([("A", 1)])
    woo.fail_next(502)
    with pytest.raises(RetryableError):
        client_for(woo, certificate, sleep=lambda s: None).post(f"orders/{oid}/notes", {"note": "x"})
    assert len(woo.calls("POST", f"/wc/v3/orders/{oid}/notes")) == 1


def test_endless_5xx_become_a_retryable_error_for_the_job(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    woo.fail_next(500, count=10)
    with pytest.raises(RetryableError) as caught:
        client_for(woo, certificate, sleep=lambda s: None).get("orders")
    assert caught.value.status == 500 and len(woo.log) == 4


def test_501_on_put_is_sent_again_as_post_with_a_method_override(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    oid = woo.state.create_order([("A", 1)])
    woo.fail_next(501)  # ModSecurity refusing PUT
    client_for(woo, certificate).put(f"orders/{oid}", {"status": "on-hold"})
    assert woo.state.orders[oid]["status"] == "on-hold"


def test_other_errors_are_named(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    client = client_for(woo, certificate)
    with pytest.raises(NotFoundError):
        client.get("orders/999999")
    with pytest.raises(InvalidRequestError, match="rest_invalid_param"):
        client.get("orders", {"per_page": 500})


def test_pages_follow_link_headers_100_at_a_time(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    for _ in range(250):
        woo.state.create_order([("A", 1)])
    orders = list(client_for(woo, certificate).pages("orders"))
    assert len(orders) == 250 and len({o["id"] for o in orders}) == 250
    assert len(woo.log) == 3


def test_at_most_two_requests_are_in_flight_per_store(woo, certificate, runtime) -> None:  # type: ignore[no-untyped-def]
    woo.delay = 0.05
    threads = [
        threading.Thread(target=client_for(woo, certificate, redis=runtime.redis).get, args=("orders",))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(woo.log) == 8 and woo.max_in_flight == 2


def test_the_wordpress_index_is_read_without_credentials(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    assert "wc/v3" in client_for(woo, certificate).namespaces()  # a key there would be a 401 since WC 11.1


def test_the_client_refuses_the_fake_store_under_the_production_policy_without_calling_it(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreUnreachable, match="private network address"):
        client_for(woo, certificate, policy=OutboundPolicy()).get("orders")
    assert woo.log == []


def test_a_redirecting_store_is_an_error_naming_the_redirect_and_is_not_followed(woo, certificate) -> None:  # type: ignore[no-untyped-def]
    woo.fail_next(302, headers={"Location": f"{woo.url}/wp-json/wc/v3/orders"})
    with pytest.raises(StoreUnreachable) as caught:
        client_for(woo, certificate).get("orders")
    assert str(caught.value) == REDIRECT and len(woo.log) == 1


def test_a_store_that_cannot_be_reached_is_retryable_and_the_error_names_no_url_or_keys(certificate) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = WooClient(
        f"http://127.0.0.1:{port}", "ck_" + "a" * 40, "cs_" + "b" * 40, requests.Session(), policy=DEVELOPMENT
    )
    client.sleep = lambda s: None
    with pytest.raises(RetryableError) as caught:
        client.get("orders")  # plain http: OAuth, the keys travel in the query string
    text = str(caught.value)
    assert text == "GET /wc/v3/orders: could not connect to the store"
    assert "ck_" not in text and "oauth" not in text and "127.0.0.1" not in text
