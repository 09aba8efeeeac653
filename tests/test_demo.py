"""The demo commands a newcomer runs after `./dev serve` (the sandbox's, development only)."""

from __future__ import annotations

import re

import requests
from sqlalchemy import select

from store.models import Shop

LINK = re.compile(r"settings page of the stand-in store \S+ \(valid 24 h\): (\S+)")


def run_woocommerce_demo(server, runtime) -> str:  # type: ignore[no-untyped-def]
    from app import create_app

    runner = create_app(runtime=runtime).test_cli_runner()
    result = runner.invoke(
        args=["demo", "--platform", "woocommerce", "--url", server.url, "--orders", "1", "--timeout", "1"]
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_the_woocommerce_demo_prints_a_settings_link_that_opens_its_shops_page(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    output = run_woocommerce_demo(server, runtime)
    match = LINK.search(output)
    assert match, output
    page = requests.get(match.group(1), timeout=5)
    assert page.status_code == 200 and "127.0.0.1" in page.text


def test_a_second_woocommerce_demo_run_leaves_no_dead_shop_behind(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    run_woocommerce_demo(server, runtime)
    second = run_woocommerce_demo(server, runtime)
    assert "removed 1 shop(s) left by earlier WooCommerce demo runs" in second
    with runtime.sessions() as session:
        shops = session.execute(select(Shop.domain, Shop.status).where(Shop.platform == "woocommerce")).all()
    assert len(shops) == 1  # only the last run's, and it is no longer polled: its store has stopped
    assert shops[0].status == "demo_ended"
