"""Every CLI command that registers something checks it first and refuses with a plain reason:
a non-zero exit, the reason on the terminal, and nothing stored."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store.models import Shop

CK, CS = "ck_" + "a1" * 20, "cs_" + "b2" * 20


def shops(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return list(session.scalars(select(Shop.domain)))


def invoke(app, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=list(args))


@pytest.mark.parametrize(
    "domain",
    [
        "not-a-shop",
        "evil.com",
        "x.myshopify.com.evil.com",
        "dash-.myshopify.com/x",
        "shop.myshopify.com/admin",
        "a_b.myshopify.com",
    ],
)
def test_shop_add_refuses_a_shopify_domain_that_is_not_a_myshopify_address(app, runtime, domain) -> None:  # type: ignore[no-untyped-def]
    result = invoke(app, "shop", "add", "shopify", domain, "--token", "x")
    assert result.exit_code != 0
    assert "is not a Shopify shop domain" in result.output and ".myshopify.com" in result.output
    assert shops(runtime) == []


def test_shop_add_accepts_a_shop_domain_written_with_capitals_or_a_scheme(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = invoke(app, "shop", "add", "shopify", "https://My-Shop.myshopify.com/", "--token", "shpat_x")
    assert result.exit_code == 0, result.output
    assert shops(runtime) == ["my-shop.myshopify.com"]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("not a store", "is not a store address"),
        ("https://", "is not a store address"),
        ("https://user:pw@store.example.com", "takes no user, password"),
        ("ftp://store.example.com", "is not a store address"),
        ("https://store_example", "is not a store address"),
    ],
)
def test_shop_add_refuses_a_woocommerce_address_that_cannot_be_a_store(app, runtime, address, reason) -> None:  # type: ignore[no-untyped-def]
    result = invoke(
        app,
        "shop",
        "add",
        "woocommerce",
        address,
        "--consumer-key",
        CK,
        "--consumer-secret",
        CS,
        "--webhook-secret",
        "S",
    )
    assert result.exit_code != 0
    assert reason in result.output
    assert shops(runtime) == []


def test_production_refuses_a_plain_http_or_private_store_address(app, runtime) -> None:  # type: ignore[no-untyped-def]
    from app import create_app

    production = runtime.settings.with_(environment="production", outbound_allow_private=False)
    runtime.settings = production
    try:
        cli = create_app(runtime=runtime).test_cli_runner()
        keys = ["--consumer-key", CK, "--consumer-secret", CS, "--webhook-secret", "S"]
        plain = cli.invoke(args=["shop", "add", "woocommerce", "http://store.example.com", *keys])
        private = cli.invoke(args=["shop", "add", "woocommerce", "https://10.0.0.8", *keys])
    finally:
        runtime.settings = production.with_(environment="development", outbound_allow_private=True)
    assert plain.exit_code != 0 and "plain http" in plain.output
    assert private.exit_code != 0 and "local or private address" in private.output
    assert shops(runtime) == []


def test_shop_add_refuses_a_woocommerce_store_with_keys_of_the_wrong_kind(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = invoke(
        app, "shop", "add", "woocommerce", "https://store.example.com",
        "--consumer-key", "key", "--consumer-secret", CS, "--webhook-secret", "S",
    )  # fmt: skip
    assert result.exit_code != 0 and "ck_" in result.output
    assert shops(runtime) == []


def test_shop_add_refuses_a_provider_whose_required_options_are_blank(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = invoke(
        app, "shop", "add", "shopify", "blank.myshopify.com", "--provider", "shipbob",
        "--provider-option", "token=pat", "--provider-option", "channel_id= ", "--provider-option", "webhook_secret=",
    )  # fmt: skip
    assert result.exit_code != 0
    assert "provider shipbob needs channel_id, webhook_secret" in result.output
    assert "--provider-option channel_id=..." in result.output
    assert shops(runtime) == []


def test_shop_add_refuses_provider_options_without_a_provider(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = invoke(app, "shop", "add", "shopify", "opt.myshopify.com", "--provider-option", "token=x")
    assert result.exit_code != 0 and "without --provider" in result.output
    assert shops(runtime) == []


def test_shop_add_refuses_an_unknown_provider(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = invoke(app, "shop", "add", "shopify", "prov.myshopify.com", "--provider", "shipbobb")
    assert result.exit_code != 0 and "unknown provider 'shipbobb'" in result.output
    assert shops(runtime) == []


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("push_on=shipped", "setting push_on: paid or created"),
        ("stock_interval_minutes=0", "between 1 and 1440"),
        ("safety_buffer=lots", "whole number"),
        ("notify_customer=maybe", "yes or no"),
        ("colour=blue", "unknown setting colour"),
        ("location_id=not a location", "a location id"),
    ],
)
def test_shop_add_refuses_a_bad_setting(app, runtime, setting, reason) -> None:  # type: ignore[no-untyped-def]
    result = invoke(app, "shop", "add", "shopify", "set.myshopify.com", "--token", "x", "--setting", setting)
    assert result.exit_code != 0
    assert reason in result.output
    assert shops(runtime) == []


def test_settings_given_on_the_command_line_are_stored_typed(app, runtime) -> None:  # type: ignore[no-untyped-def]
    result = invoke(
        app, "shop", "add", "shopify", "typed.myshopify.com", "--token", "x",
        "--setting", "stock_interval_minutes=15", "--setting", "notify_customer=no",
        "--setting", "hold_tags=review, vip",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with runtime.sessions() as session:
        settings = session.scalars(select(Shop.settings)).one()
    assert settings["stock_interval_minutes"] == 15 and settings["notify_customer"] is False
    assert settings["hold_tags"] == ["review", "vip"]


def test_shop_provider_refuses_blank_required_options_before_any_call(app, runtime) -> None:  # type: ignore[no-untyped-def]
    assert invoke(app, "shop", "add", "shopify", "later.myshopify.com", "--token", "x").exit_code == 0
    result = invoke(app, "shop", "provider", "later.myshopify.com", "shipbob", "--provider-option", "token=pat")
    assert result.exit_code != 0 and "provider shipbob needs channel_id, webhook_secret" in result.output
    with runtime.sessions() as session:
        assert session.scalars(select(Shop.provider)).one() == ""
