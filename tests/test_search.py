"""Finding an older order on the merchant's page: by name, customer, e-mail, SKU or tracking
number, and by state; bounded, wildcards typed by the merchant matched literally, this shop only."""

from __future__ import annotations

import pytest

from jobs import states
from store import order_search
from store.db import transaction
from store.models import Order, Shipment
from tests.app_support import app_settings, fake_shopify, install, session_token
from tests.test_settings_page import OTHER, add_order


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    return app_settings(settings, shopify)


def customer(runtime, order_id: int, name: str, email: str) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        row = session.get(Order, order_id)
        row.ship_to = {**row.ship_to, "name": name}
        row.contact = {"email": email, "phone": ""}


@pytest.fixture
def shop(runtime, shopify):  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    ids = {
        "camille": add_order(runtime, shop_id, "2001", states.PUSHED, "accepted", sku="MUG-BLEU"),
        "jonas": add_order(runtime, shop_id, "2002", states.FAILED, "refused", sku="TEE_M"),
        "percent": add_order(runtime, shop_id, "2003", states.HELD, "tagged review (a hold tag)", sku="TEE-M"),
    }
    customer(runtime, ids["camille"], "Camille Martin", "camille@example.com")
    customer(runtime, ids["jonas"], "Jonas Weber", "jonas@exemple.de")
    customer(runtime, ids["percent"], "100% Cotton Ltd", "shop@cotton.example")
    with transaction(runtime.sessions) as session:
        session.add(
            Shipment(
                order_id=ids["camille"], provider_shipment_id="S1", carrier="Colissimo", tracking_number="6A69662256174"
            )
        )
    other = install(runtime, shopify, OTHER)
    ids["other"] = add_order(runtime, other, "2004", states.PUSHED, "accepted", sku="MUG-BLEU")
    customer(runtime, ids["other"], "Camille Martin", "camille@example.com")
    return shop_id, ids


def found(runtime, shop_id: int, text: str = "", state: str = "") -> set[int]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return set(order_search.search(session, shop_id, order_search.parse(text, state)))


def test_search_finds_by_order_name_customer_email_sku_and_tracking_number(runtime, shop) -> None:  # type: ignore[no-untyped-def]
    shop_id, ids = shop
    assert found(runtime, shop_id, "#2001") == {ids["camille"]}
    assert found(runtime, shop_id, "2002") == {ids["jonas"]}
    assert found(runtime, shop_id, "camille mar") == {ids["camille"]}
    assert found(runtime, shop_id, "JONAS@EXEMPLE") == {ids["jonas"]}
    assert found(runtime, shop_id, "mug-bleu") == {ids["camille"]}
    assert found(runtime, shop_id, "6A69662256174") == {ids["camille"]}
    assert found(runtime, shop_id, "nobody") == set()


def test_search_never_returns_another_shops_order(runtime, shop) -> None:  # type: ignore[no-untyped-def]
    shop_id, ids = shop
    assert ids["other"] not in found(runtime, shop_id, "camille")


def test_wildcards_typed_by_the_merchant_match_themselves(runtime, shop) -> None:  # type: ignore[no-untyped-def]
    shop_id, ids = shop
    assert found(runtime, shop_id, "TEE_M") == {ids["jonas"]}  # "_" is not "any one character"
    assert found(runtime, shop_id, "100%") == {ids["percent"]}  # "%" is not "anything"
    assert found(runtime, shop_id, "%") == {ids["percent"]}
    assert found(runtime, shop_id, "\\") == set()


def test_the_state_filter_alone_and_with_text(runtime, shop) -> None:  # type: ignore[no-untyped-def]
    shop_id, ids = shop
    assert found(runtime, shop_id, state="failed") == {ids["jonas"]}
    assert found(runtime, shop_id, "tee", state="held") == {ids["percent"]}
    assert order_search.parse("x", "not-a-state").state == ""


def test_results_are_bounded(runtime, shop) -> None:  # type: ignore[no-untyped-def]
    shop_id, _ = shop
    with runtime.sessions() as session:
        assert len(order_search.search(session, shop_id, order_search.parse("", "pushed"), limit=1)) == 1
    assert len(order_search.parse("x" * 500, "").text) == order_search.MAX_QUERY


def test_the_page_searches_with_a_get_form(client, runtime, shop) -> None:  # type: ignore[no-untyped-def]
    _, ids = shop
    token = session_token()
    page = client.get(f"/app?id_token={token}&q=camille").text
    orders = page.split('id="orders"')[1]
    assert f'data-order-id="{ids["camille"]}"' in orders and f'data-order-id="{ids["jonas"]}"' not in orders
    assert 'value="camille"' in orders and "1 found" in orders
    failed = client.get(f"/app?id_token={token}&state=failed").text.split('id="orders"')[1]
    assert f'data-order-id="{ids["jonas"]}"' in failed and f'data-order-id="{ids["camille"]}"' not in failed
    none = client.get(f"/app?id_token={token}&q=%25%25zz").text
    assert "No order matches this search." in none
