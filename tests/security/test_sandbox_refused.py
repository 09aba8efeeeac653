"""Attack: give a shop the development sandbox as its provider on a production deployment.

Before, every new install got ``provider=sandbox`` and ``shop add`` defaulted to it, so a
production shop's real orders went to a simulated 3PL that "shipped" them with invented tracking
numbers written to the shop, the customer notified. A production-configured Relais must refuse
``sandbox`` with a plain reason on the CLI and on the settings page, and never offer it.
"""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from app import create_app
from integrations import fulfilment
from jobs.runtime import set_runtime
from store.models import Shop
from tests.app_support import SHOP, app_settings, fake_shopify, install, session_token

REASON = "sandbox is a simulated fulfilment centre for development; it is not available in production"


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def production(runtime, shopify):  # type: ignore[no-untyped-def]
    """A production-configured app on the test database (its tables made by ``runtime``)."""
    settings = app_settings(runtime.settings, shopify).with_(
        environment="production", encryption_key=Fernet.generate_key().decode()
    )
    app = create_app(settings)
    yield app
    fulfilment.register("sandbox", "sandbox.provider:SandboxProvider")  # the rest of the suite runs in development
    production_runtime = app.extensions["relais"]
    production_runtime.engine.dispose()  # no connection left for the garbage collector to find open
    if production_runtime.redis_client is not None:
        production_runtime.redis_client.close()
    set_runtime(None)


def test_shop_add_and_shop_provider_refuse_the_sandbox_in_production(production) -> None:  # type: ignore[no-untyped-def]
    runner = production.test_cli_runner()
    added = runner.invoke(args=["shop", "add", "shopify", "victim.myshopify.com", "--provider", "sandbox"])
    assert added.exit_code != 0 and REASON in added.output
    rt = production.extensions["relais"]
    with rt.sessions() as session:
        assert session.scalars(select(Shop)).all() == []  # nothing stored
    plain = runner.invoke(args=["shop", "add", "shopify", "victim.myshopify.com", "--token", "shpat_x"])
    assert plain.exit_code == 0 and "no provider yet" in plain.output
    given = runner.invoke(args=["shop", "provider", "victim.myshopify.com", "sandbox", "--provider-option", "token=x"])
    assert given.exit_code != 0 and REASON in given.output
    with rt.sessions() as session:
        assert session.scalars(select(Shop.provider)).one() == ""


def test_the_settings_page_never_offers_the_sandbox_in_production_and_refuses_it(production, shopify) -> None:  # type: ignore[no-untyped-def]
    rt = production.extensions["relais"]
    shop_id = install(rt, shopify, provider="")
    client = production.test_client()
    page = client.get(f"/app?id_token={session_token()}")
    assert page.status_code == 200
    select_box = page.text.split('id="provider-select"')[1].split("</select>")[0]
    assert 'value="sandbox"' not in select_box and 'value="shipbob"' in select_box
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/app/provider",
        data={"csrf_token": csrf, "provider": "sandbox", "sandbox:token": "anything"},
        headers={"Authorization": f"Bearer {session_token(SHOP)}", "X-Relais-Fetch": "1"},
    )
    assert f"Nothing saved: {REASON}" in answer.text
    with rt.sessions() as session:
        assert session.get(Shop, shop_id).provider == ""
