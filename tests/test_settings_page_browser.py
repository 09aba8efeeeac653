"""The settings page in a real browser (Debian's Chromium driven by Playwright), as a merchant uses
it inside Shopify's admin: loaded with a session token, a setting changed, a failed order retried.

Nothing here reaches Shopify's CDN: App Bridge and Polaris are routed to local stubs (App Bridge's
stub hands out session tokens like the real one), so the page must stand on its own stylesheet.
A screenshot is saved under the test's folder and copied to ``test-output/`` at the repo root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from jobs import states
from store.db import transaction
from store.models import Order, Shipment, Shop
from store.orders import transition
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
