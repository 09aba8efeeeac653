"""``shop add woocommerce``: a store registered by the operator, without the connect flow."""

from __future__ import annotations

from sqlalchemy import select

from store.models import Shop

CK, CS = "ck_" + "a1" * 20, "cs_" + "b2" * 20


def test_shop_add_woocommerce_registers_the_store_and_prints_its_shop_id(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(
        args=[
            "shop",
            "add",
            "woocommerce",
            "https://Store.Example.com/",
            "--consumer-key",
            CK,
            "--consumer-secret",
            CS,
            "--webhook-secret",
            "S3cretForWebhooks",
            "--provider",
            "sandbox",
        ]
    )
    assert result.exit_code == 0, result.output
    with runtime.sessions() as session:
        shop = session.scalars(select(Shop)).one()
    assert f"shop {shop.id}: woocommerce https://store.example.com → sandbox" in result.output
    assert f"/webhooks/woocommerce/{shop.id}" in result.output
    assert runtime.vault.open(shop.credentials_enc) == {
        "consumer_key": CK,
        "consumer_secret": CS,
        "webhook_secret": "S3cretForWebhooks",
    }
    assert CS.encode() not in shop.credentials_enc and shop.settings["location_id"] == "store"


def test_shop_add_woocommerce_refuses_a_missing_webhook_secret(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(
        args=["shop", "add", "woocommerce", "https://store.example.com", "--consumer-key", CK, "--consumer-secret", CS]
    )
    assert result.exit_code != 0 and "--webhook-secret" in result.output
    with runtime.sessions() as session:
        assert session.scalars(select(Shop)).all() == []


def test_woocommerce_connect_link_prints_a_link_that_opens_the_connect_page_for_that_store_only(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(
        args=["woocommerce", "connect-link", "https://Store.Example.com/", "--hours", "2"]
    )
    assert result.exit_code == 0, result.output
    link = result.stdout.strip()
    assert link.startswith(f"{runtime.settings.public_url}/woocommerce/connect?g=")
    assert "for https://store.example.com only" in result.stderr
    page = app.test_client().get(link.removeprefix(runtime.settings.public_url))
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "https://store.example.com" in text and 'name="store_url"' not in text
    tampered = app.test_client().get(link.removeprefix(runtime.settings.public_url)[:-2] + "xx")
    assert tampered.status_code == 401
