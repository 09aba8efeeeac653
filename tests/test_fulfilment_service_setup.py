"""How a shop comes to be a fulfilment service: an app install (the default), or the merchant
switching the mode on the settings page; either way one service, made once."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from store.fulfilment_service_models import FulfilmentService
from store.installs import find_shop
from store.models import Shop
from tests.app_support import SHOP, app_settings, fake_shopify, install, session_token
from tests.conftest import drain
from tests.test_install import start_install
from tests.test_settings_page import bearer, settings_form
from web.settings_form import parse_settings


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    return app_settings(settings, shopify)


def test_an_app_install_makes_a_fulfilment_service_shop_and_installing_again_creates_no_second_service(
    client, runtime, shopify
) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        path, params = start_install(client)
        client.get(f"{path}?{urlencode(params)}")
        drain(runtime)
    [made] = shopify.services.services
    with runtime.sessions() as session:
        shop = find_shop(session, "shopify", SHOP)
        assert shop.settings["fulfilment_mode"] == "service"
        assert shop.settings["location_id"] == made.location_id
        assert session.scalars(select(FulfilmentService)).one().service_id == made.id


def test_switching_to_service_mode_on_the_settings_page_creates_the_service(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)  # an order-webhooks shop
    page = client.get(f"/app?id_token={session_token()}").text
    assert 'name="fulfilment_mode" value="order_webhooks" checked' in page
    answer = client.post("/app/settings", data=settings_form(page, fulfilment_mode="service"), headers=bearer())
    assert answer.status_code == 200 and "Settings saved" in answer.text
    drain(runtime)
    [made] = shopify.services.services
    with runtime.sessions() as session:
        assert session.get(Shop, shop_id).settings["fulfilment_mode"] == "service"
        assert session.get(Shop, shop_id).settings["location_id"] == made.location_id


def test_an_unknown_fulfilment_mode_is_refused_and_a_form_without_one_keeps_the_mode() -> None:
    assert parse_settings({"fulfilment_mode": "both"}, set()).errors["fulfilment_mode"] == "service or order_webhooks"
    assert "fulfilment_mode" not in parse_settings({"push_on": "paid"}, set()).values
