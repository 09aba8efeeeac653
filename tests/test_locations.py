"""Locations done for the merchant: the stock sync needs no setting for a one-location shop,
refuses (naming them) for a shop with several, and uses the mapping the merchant picks on the
settings page; ``shop locations`` prints both lists.

Over real HTTP: the service on a real port with the sandbox 3PL (one warehouse, ``SANDBOX-1``) as
provider, and the schema-checked fake Shopify with locations, inventory items and levels.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select

from app import create_app
from jobs.stock import run
from sandbox.api import account_of
from sandbox.models import SandboxStock
from store.db import transaction
from store.models import Shop
from store.stock_models import StockSyncRun
from tests.app_support import API_KEY, APP_SECRET, SHOP, install, session_token
from tests.conftest import drain
from tests.fakes.shopify_admin import DEFAULT_TOKEN, FakeShopifyAdmin

MAIN = "gid://shopify/Location/64500000001"
DEPOT = "gid://shopify/Location/64500000002"
WAREHOUSE = "sandbox-locations-account"


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    server = FakeShopifyAdmin(DEFAULT_TOKEN, restore_rate=100_000, maximum=100_000)
    server.oauth.client_id, server.oauth.client_secret = API_KEY, APP_SECRET
    yield server.start()
    server.stop()


@pytest.fixture
def settings(settings, fake):  # type: ignore[no-untyped-def]
    return settings.with_(
        shopify_api_key=API_KEY, shopify_api_secret=APP_SECRET, shopify_admin_url=fake.url + "/{shop}"
    )


@pytest.fixture
def shop(live, fake):  # type: ignore[no-untyped-def]
    server, runtime = live
    return server, runtime, install(runtime, fake, provider_token=WAREHOUSE)


def warehouse(runtime, **on_hand: int) -> None:  # type: ignore[no-untyped-def]
    account = account_of(WAREHOUSE)
    with transaction(runtime.sessions) as session:
        for sku, units in on_hand.items():
            session.add(SandboxStock(account=account, sku=sku, on_hand=units, committed=0))


def test_a_one_location_shop_needs_no_location_setting_for_the_stock_sync(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    fake.places.add_location(MAIN, "Main store")
    fake.inventory.add_item("MUG", MAIN, available=0)
    warehouse(runtime, MUG=7)

    outcome = run(runtime, shop_id)

    assert (outcome.status, outcome.written) == ("ok", 1)
    assert fake.inventory.available("MUG", MAIN) == 7


def test_a_shop_with_several_locations_and_no_choice_is_refused_with_their_names_and_nothing_written(
    shop, fake
) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = shop
    fake.places.add_location(MAIN, "Main store")
    fake.places.add_location(DEPOT, "Lyon depot")
    fake.places.add_location("gid://shopify/Location/64500000003", "Closed shop", active=False)
    fake.inventory.add_item("MUG", MAIN, available=0)
    warehouse(runtime, MUG=7)

    outcome = run(runtime, shop_id)

    assert outcome.status == "failed"
    assert f"Main store ({MAIN})" in outcome.message and f"Lyon depot ({DEPOT})" in outcome.message
    assert "Closed shop" not in outcome.message and "nothing written" in outcome.message
    assert fake.operations["inventorySetQuantities"] == 0 and fake.inventory.available("MUG", MAIN) == 0
    with runtime.sessions() as session:  # the merchant's notice: the page shows the last run's error
        recorded = session.scalars(select(StockSyncRun).where(StockSyncRun.shop_id == shop_id)).one()
        assert recorded.status == "failed" and "Lyon depot" in recorded.error
    stock_card = re.search(r'id="stock-sync".*?</div>\s*</div>', page(server), re.S).group(0)  # type: ignore[union-attr]
    assert "the shop has 2 locations (Lyon depot, Main store)" in stock_card and "nothing written" in stock_card


def page(server, path: str = "/app") -> str:  # type: ignore[no-untyped-def]
    answer = requests.get(f"{server.url}{path}?id_token={session_token()}", timeout=10)
    assert answer.status_code == 200
    return answer.text


def form_of(html: str) -> dict[str, str]:
    """The settings form as a browser would post it untouched: inputs and each select's choice."""
    form = re.search(r'<form[^>]*id="settings-form".*?</form>', html, re.S).group(0)  # type: ignore[union-attr]
    values: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if (
            not name
            or ('type="checkbox"' in tag and "checked" not in tag)
            or ('type="radio"' in tag and "checked" not in tag)
        ):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        values[name.group(1)] = value.group(1) if value else "on"
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        values[name] = chosen.group(1) if chosen else ""
    values["sku_buffers"] = ""
    return values


def test_the_mapping_chosen_on_the_settings_page_is_saved_and_used_by_the_next_sync(shop, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = shop
    fake.places.add_location(MAIN, "Main store")
    fake.places.add_location(DEPOT, "Lyon depot")
    fake.inventory.add_item("MUG", DEPOT, available=0)
    warehouse(runtime, MUG=9)

    first = page(server)
    assert 'id="locations-pending"' in first  # listed by a job: the page never waits on Shopify
    drain(runtime)
    html = page(server)
    assert "Lyon depot" in html and "Sandbox warehouse" in html and 'id="location-needed"' in html

    form = form_of(html)
    form["centre:SANDBOX-1"] = DEPOT
    headers = {"Authorization": f"Bearer {session_token()}", "X-Relais-Fetch": "1"}
    answer = requests.post(f"{server.url}/app/settings", data=form, headers=headers, timeout=10)
    assert answer.status_code == 200 and "Settings saved" in answer.text

    with runtime.sessions() as session:
        assert session.get(Shop, shop_id).settings["stock_locations"] == {"SANDBOX-1": DEPOT}
    outcome = run(runtime, shop_id)
    assert (outcome.status, outcome.written) == ("ok", 1)
    assert fake.inventory.available("MUG", DEPOT) == 9


def test_a_location_the_page_did_not_offer_is_refused_and_nothing_saved(shop, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = shop
    fake.places.add_location(MAIN, "Main store")
    page(server)
    drain(runtime)
    form = form_of(page(server))
    form["centre:SANDBOX-1"] = "gid://shopify/Location/999"
    headers = {"Authorization": f"Bearer {session_token()}", "X-Relais-Fetch": "1"}
    answer = requests.post(f"{server.url}/app/settings", data=form, headers=headers, timeout=10)

    assert "Nothing saved" in answer.text and "choose one of the shop" in answer.text
    with runtime.sessions() as session:
        assert session.get(Shop, shop_id).settings["stock_locations"] == {}


def test_the_page_still_renders_when_shopify_is_down_and_says_it_could_not_list_locations(shop, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = shop
    with transaction(runtime.sessions) as session:
        row = session.get(Shop, shop_id)
        row.settings = {**row.settings, "location_id": MAIN}
    fake.fail_next(503, count=20)
    page(server)
    drain(runtime)

    html = page(server)

    assert 'id="locations-error"' in html and "Could not list the shop" in html
    assert f'value="{MAIN}"' in html  # the saved choice is kept in the plain field
    assert "Save settings" in html


def test_shop_locations_prints_both_lists_and_the_mapping(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    fake.places.add_location(MAIN, "Main store")
    fake.places.add_location(DEPOT, "Lyon depot")
    with transaction(runtime.sessions) as session:
        row = session.get(Shop, shop_id)
        row.settings = {**row.settings, "stock_locations": {"SANDBOX-1": DEPOT}}

    result = create_app(runtime=runtime).test_cli_runner().invoke(args=["shop", "locations", SHOP])

    assert result.exit_code == 0, result.output
    assert f"{MAIN}  Main store" in result.output and f"{DEPOT}  Lyon depot" in result.output
    assert f"SANDBOX-1  Sandbox warehouse  → Lyon depot ({DEPOT})" in result.output
    assert f"stock sync writes to: Lyon depot ({DEPOT})" in result.output


def test_shop_locations_says_when_the_stock_sync_would_refuse(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, _shop_id = shop
    fake.places.add_location(MAIN, "Main store")
    fake.places.add_location(DEPOT, "Lyon depot")

    result = create_app(runtime=runtime).test_cli_runner().invoke(args=["shop", "locations", SHOP])

    assert "SANDBOX-1  Sandbox warehouse  → (not mapped)" in result.output
    assert "stock sync: refuses: the shop has 2 locations" in result.output


def test_a_woocommerce_store_is_not_offered_the_fraud_rule_and_lists_its_one_location(live) -> None:  # type: ignore[no-untyped-def]
    from web.app_session import signed_link

    _server, runtime = live
    with transaction(runtime.sessions) as session:
        row = Shop(platform="woocommerce", domain="https://shop.example.org", provider="sandbox", settings={})
        row.credentials_enc = runtime.vault.seal({})
        row.provider_options_enc = runtime.vault.seal({"token": WAREHOUSE})
        session.add(row)
        session.flush()
        shop_id = row.id
    link = signed_link(runtime.settings, shop_id)
    requests.get(link, timeout=10)
    drain(runtime)

    html = requests.get(link, timeout=10).text

    assert 'id="fraud-not-offered"' in html and 'name="hold_high_risk"' not in html
    assert '<option value="store"' in html and "Sandbox warehouse" in html


def test_stock_sync_on_the_command_line_says_why_it_refuses(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    fake.places.add_location(MAIN, "Main store")
    fake.places.add_location(DEPOT, "Lyon depot")
    warehouse(runtime, MUG=7)

    result = create_app(runtime=runtime).test_cli_runner().invoke(args=["stock", "sync", str(shop_id)])

    assert "the shop has 2 locations (Lyon depot" in result.output and "nothing written" in result.output
    assert fake.operations["inventorySetQuantities"] == 0


def test_the_page_still_lists_the_shops_locations_when_the_provider_is_down(shop, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _shop_id = shop
    fake.places.add_location(MAIN, "Main store")
    down = requests.post(
        f"{server.url}/sandbox/api/faults",
        json={"fail_next": 5, "status": 503},
        headers={"Authorization": f"Bearer {WAREHOUSE}"},
        timeout=10,
    )
    assert down.status_code == 200
    page(server)
    drain(runtime)

    html = page(server)

    assert 'id="centres-error"' in html and "Could not list the fulfilment centres" in html
    assert '<option value="gid://shopify/Location/64500000001"' in html  # the shop's side is still offered
