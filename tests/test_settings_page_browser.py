"""The settings page in a real browser (Debian's Chromium driven by Playwright), as a merchant uses
it inside Shopify's admin: loaded with a session token, a setting changed, a failed order retried;
the order list, an order's page, a search and the page in French, with no internal id on screen.

Nothing here reaches Shopify's CDN: App Bridge and Polaris are routed to local stubs (App Bridge's
stub hands out session tokens like the real one), so the page must stand on its own stylesheet.
Screenshots are saved under the test's folder and copied to ``test-output/`` at the repo root.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from jobs import states
from store.db import transaction
from store.models import Order, Shipment, Shop
from store.orders import note, transition
from tests.app_support import SHOP, app_settings, fake_shopify, install, session_token
from tests.conftest import drain
from tests.test_settings_page import add_order

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
APP_BRIDGE_STUB = """
window.shopify = {
  idToken: async function () { return %s; },
  toast: { show: function (message) { window.__toasts = (window.__toasts || []).concat([message]); } },
};
"""

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    return app_settings(settings, shopify)


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield launched
        launched.close()


def shop_with_orders(runtime, shopify) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """A shop with a failed order, a held one, one without a SKU and one shipped with tracking."""
    shop_id = install(runtime, shopify)
    failed = add_order(
        runtime, shop_id, "1001", states.FAILED, "sandbox refused the order: recipient: invalid postcode"
    )
    # The page turns the fraud rule on: Shopify has assessed the retried order as low risk.
    shopify.places.set_risk("gid://shopify/Order/1001", "LOW", recommendation="ACCEPT")
    add_order(runtime, shop_id, "1002", states.HELD, "tagged review (a hold tag)")
    add_order(runtime, shop_id, "1003", states.RECEIVED, "waiting for payment", sku="")
    shipped = add_order(runtime, shop_id, "1004", states.READY, "paid")
    with transaction(runtime.sessions) as session:
        row = session.get(Order, shipped)
        for state in (states.PUSHING, states.PUSHED, states.SHIPPED):
            transition(row, state, f"moved to {state}")
        session.add(Shipment(order=row, provider_shipment_id="P1", carrier="DHL", tracking_number="JD0123"))
    return shop_id, failed


def test_the_merchant_changes_a_setting_and_retries_a_failed_order(live, shopify, browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    shop_id, failed = shop_with_orders(runtime, shopify)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    token = session_token(lifetime=600)
    page.route(
        "https://cdn.shopify.com/shopifycloud/app-bridge.js",
        lambda route: route.fulfill(body=APP_BRIDGE_STUB % f'"{token}"', content_type="application/javascript"),
    )
    page.route(
        "https://cdn.shopify.com/shopifycloud/polaris.js",
        lambda route: route.fulfill(body="/* Polaris stub */", content_type="application/javascript"),
    )

    page.goto(f"{server.url}/app?shop={SHOP}&host=YWRtaW4&embedded=1&id_token={session_token()}")
    attention = page.locator("#attention")
    sync_api.expect(attention.get_by_text("#1001")).to_be_visible()
    sync_api.expect(attention.get_by_text("invalid postcode")).to_be_visible()

    out = REPO / "test-output"
    out.mkdir(exist_ok=True)
    before = tmp_path / "settings-page-before.png"
    page.screenshot(path=str(before), full_page=True)
    shutil.copy(before, out / before.name)

    page.fill("#safety_buffer", "3")
    page.check("input[name=hold_high_risk]")
    page.click("#save-settings")
    sync_api.expect(page.locator("#flash")).to_have_text("Settings saved")
    with runtime.sessions() as session:
        saved = session.get(Shop, shop_id).settings
    assert saved["safety_buffer"] == 3 and saved["hold_high_risk"] is True

    page.locator(f"#attention [data-order-id='{failed}'] button[data-action=retry]").click()
    sync_api.expect(page.locator("#flash")).to_have_text("#1001 will be sent again")
    with runtime.sessions() as session:
        assert session.get(Order, failed).state == states.READY
    assert page.evaluate("window.__toasts") == ["Settings saved", "#1001 will be sent again"]
    drain(runtime)
    with runtime.sessions() as session:
        assert session.scalar(select(Order.state).where(Order.id == failed)) == states.PUSHED

    page.locator("details.order").first.locator("summary").click()  # open one order's timeline
    shot = tmp_path / "settings-page.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copy(shot, out / shot.name)
    context.close()
    assert shot.stat().st_size > 10_000
    assert problems == []


PROVIDER_REFERENCE = re.compile(r"\b\d+-\d{6,}\b")


def shot(page, tmp_path: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    """A full-page screenshot under the test's folder, copied to ``test-output/``."""
    out = REPO / "test-output"
    out.mkdir(exist_ok=True)
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    shutil.copy(path, out / name)
    return path


def no_internal_ids(page) -> None:  # type: ignore[no-untyped-def]
    text = page.evaluate("document.body.innerText")
    assert "gid://" not in text
    assert not PROVIDER_REFERENCE.search(text), PROVIDER_REFERENCE.search(text)


def delivered_order(runtime, shop_id: int) -> int:  # type: ignore[no-untyped-def]
    """An order the pipeline took all the way, with the ids its timeline records."""
    order_id = add_order(runtime, shop_id, "9000000489182927913", states.READY, "paid", sku="MUG-RELAIS")
    with transaction(runtime.sessions) as session:
        row = session.get(Order, order_id)
        row.name, row.provider, row.provider_order_id = "#1005", "sandbox", "41"
        row.ship_to = {"name": "Camille Martin", "address1": "12 rue de Rivoli", "zip": "75001", "city": "Paris",
                       "country_code": "FR"}  # fmt: skip
        row.contact = {"email": "camille@example.com", "phone": ""}
        transition(row, states.PUSHING, f"sending to sandbox as {shop_id}-9000000489182927913")
        transition(row, states.PUSHED, "accepted by sandbox as order 41")
        session.add(
            Shipment(order=row, provider_shipment_id="41", carrier="Colissimo", tracking_number="6A69662256174")
        )
        note(row, "parcel 41 shipped by the provider: Colissimo 6A69662256174")
        note(row, "tracking 6A69662256174 written to the shop (gid://shopify/Fulfillment/3)")
        transition(row, states.SHIPPED, "tracking of parcel 41 written to the shop")
        transition(row, states.DELIVERED, "provider reports parcel 41 delivered")
    return order_id


def test_the_list_an_order_page_a_search_and_the_page_in_french(live, shopify, browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    shop_id, _ = shop_with_orders(runtime, shopify)
    delivered = delivered_order(runtime, shop_id)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    token = session_token(lifetime=600)
    page.route(
        "https://cdn.shopify.com/shopifycloud/app-bridge.js",
        lambda route: route.fulfill(body=APP_BRIDGE_STUB % f'"{token}"', content_type="application/javascript"),
    )
    page.route(
        "https://cdn.shopify.com/shopifycloud/polaris.js",
        lambda route: route.fulfill(body="/* Polaris stub */", content_type="application/javascript"),
    )

    # The list: the delivered order's row has every step done, Delivered included.
    page.goto(f"{server.url}/app?shop={SHOP}&host=YWRtaW4&embedded=1&id_token={session_token()}")
    row = page.locator(f"#orders li[data-order-id='{delivered}']")
    sync_api.expect(row.locator("[data-step=delivered].step-done")).to_be_visible()
    row.locator("summary").click(position={"x": 400, "y": 10})
    sync_api.expect(row.get_by_role("link", name="6A69662256174")).to_be_visible()
    no_internal_ids(page)
    shot(page, tmp_path, "merchant-list.png")

    # The order page, opened from the list (the script adds a fresh session token to the URL).
    row.locator("a.order-name").click()
    page.wait_for_url(f"**/app/orders/{delivered}?**")
    sync_api.expect(page.locator("h1")).to_have_text("Order #1005")
    sync_api.expect(page.locator(".customer-name")).to_have_text("Camille Martin")
    link = page.locator("#parcels a.tracking-link")
    assert link.get_attribute("href") == "https://www.laposte.fr/outils/suivre-vos-envois?code=6A69662256174"
    sync_api.expect(page.locator("#timeline")).to_contain_text("accepted by sandbox (its order 41)")
    assert re.search(r"\d:\d{2}:\d{2}", page.locator("#timeline").inner_text())
    no_internal_ids(page)
    shot(page, tmp_path, "merchant-order.png")

    # A search by SKU from the list.
    page.locator("a", has_text="Orders").first.click()
    page.wait_for_url("**/app?**")
    page.fill("#search-q", "mug-relais")
    page.locator("#search button[type=submit]").click()
    page.wait_for_url("**q=mug-relais**")
    sync_api.expect(page.locator("#orders")).to_contain_text("1 found")
    sync_api.expect(page.locator(f"#orders li[data-order-id='{delivered}']")).to_be_visible()
    no_internal_ids(page)
    shot(page, tmp_path, "merchant-search.png")

    # The page in French, as Shopify opens it for a French-speaking merchant.
    page.goto(f"{server.url}/app?shop={SHOP}&host=YWRtaW4&embedded=1&locale=fr&id_token={session_token()}")
    sync_api.expect(page.locator("#attention-title")).to_have_text("À traiter")
    sync_api.expect(page.locator("#orders-title")).to_have_text("Commandes")
    page.locator(f"#orders li[data-order-id='{delivered}'] summary").click(position={"x": 400, "y": 10})
    sync_api.expect(page.locator(f"#orders li[data-order-id='{delivered}']")).to_contain_text("acceptée par sandbox")
    no_internal_ids(page)
    shot(page, tmp_path, "merchant-page-fr.png")
    page.locator(f"#orders li[data-order-id='{delivered}'] a.order-name").click()
    page.wait_for_url("**locale=fr**")
    sync_api.expect(page.locator("h1")).to_have_text("Commande #1005")
    no_internal_ids(page)
    shot(page, tmp_path, "merchant-order-fr.png")
    context.close()
    assert problems == []
