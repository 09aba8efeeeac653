"""``shop add`` and ``shop list``: register shops without OAuth (development, tests, custom apps)."""

from __future__ import annotations

import importlib

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from integrations import fulfilment, platforms
from integrations.errors import ConfigError
from store.db import transaction
from store.models import Shop
from store.shops import upsert_shop


def parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=what)
        result[key.strip()] = value
    return result


shop = AppGroup("shop", help="Register and list shops.")


@shop.command("add")
@click.argument("platform", type=click.Choice(platforms.names()))
@click.argument("domain")
@click.option("--token", default="", help="Admin API access token (Shopify: shpat_...).")
@click.option("--provider", default="sandbox", type=click.Choice(fulfilment.names()), show_default=True)
@click.option("--provider-option", "provider_options", multiple=True, help="Provider setting KEY=VALUE (repeatable).")
@click.option("--setting", "settings", multiple=True, help="Shop setting KEY=VALUE, e.g. push_on=created.")
@click.option("--sandbox-shop", is_flag=True, help="Development: write back to the built-in sandbox shop, not Shopify.")
@click.option("--consumer-key", default="", help="WooCommerce REST API consumer key (ck_...).")
@click.option("--consumer-secret", default="", help="WooCommerce REST API consumer secret (cs_...).")
@click.option("--webhook-secret", default="", help="WooCommerce: the secret the store's webhooks are signed with.")
def add(
    platform: str,
    domain: str,
    token: str,
    provider: str,
    provider_options: tuple[str, ...],
    settings: tuple[str, ...],
    sandbox_shop: bool,
    consumer_key: str,
    consumer_secret: str,
    webhook_secret: str,
) -> None:
    """Register (or update) a shop and its provider; secrets are stored encrypted."""
    runtime = current_app.extensions["relais"]
    options = parse_pairs(provider_options, "--provider-option")
    shop_settings: dict[str, object] = dict(parse_pairs(settings, "--setting"))
    if "notify_customer" in shop_settings:
        shop_settings["notify_customer"] = str(shop_settings["notify_customer"]).lower() in ("1", "true", "yes", "on")
    credentials: dict[str, object] = {"access_token": token}
    if sandbox_shop:
        if not runtime.settings.sandbox_enabled:
            raise click.ClickException("--sandbox-shop is a development stand-in; it does not exist in production")
        credentials = {"access_token": token or "sandbox", "sandbox_shop": True}
        shop_settings.setdefault("location_id", importlib.import_module("sandbox.shop").SANDBOX_LOCATION)
    if platform == "woocommerce":
        from integrations.woocommerce.connect import manual_credentials

        try:
            domain, woo = manual_credentials(domain, consumer_key, consumer_secret, webhook_secret)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        credentials = dict(woo)
        shop_settings.setdefault("location_id", "store")  # WooCommerce: one stock figure per product
    try:
        with transaction(runtime.sessions) as session:
            row = upsert_shop(session, runtime.vault, platform, domain, credentials, provider, options, shop_settings)
            shop_id, shop_domain = row.id, row.domain
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"shop {shop_id}: {platform} {shop_domain} → {provider}")
    if platform == "woocommerce":
        click.echo(f"webhook delivery URL: {runtime.settings.public_url.rstrip('/')}/webhooks/woocommerce/{shop_id}")


@shop.command("list")
def list_shops() -> None:
    """Every shop with its platform, provider and status (never its secrets)."""
    runtime = current_app.extensions["relais"]
    with runtime.sessions() as session:
        for row in session.scalars(select(Shop).order_by(Shop.id)):
            click.echo(f"{row.id:>4}  {row.platform:<12} {row.domain:<40} {row.provider:<10} {row.status}")
