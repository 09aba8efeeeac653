"""``shop add`` and ``shop list``: register shops without OAuth (development, tests, custom apps)."""

from __future__ import annotations

import importlib
import ipaddress
import re
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import or_, select

from integrations import fulfilment, platforms
from integrations.errors import ConfigError
from integrations.fulfilment.base import webhook_url
from integrations.outbound import OutboundPolicy, refused_address
from integrations.shopify.auth import valid_shop
from jobs import shop_config
from jobs.orders import release_waiting
from jobs.runtime import Runtime
from store.db import transaction
from store.fulfilment_orders import FULFILMENT_MODES
from store.models import Shop
from store.shops import DEFAULT_SETTINGS, normalise_domain, provider_refusal, upsert_shop
from web.settings_form import OPTIONAL_ADDRESS_FIELDS, parse_settings


def parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=what)
        result[key.strip()] = value
    return result


# A host name as a store address may carry it: dot-separated labels of letters, digits and hyphens.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
_INTEGER_SETTINGS = {"stock_interval_minutes": (1, 1440), "safety_buffer": (0, 100_000), "risk_wait_minutes": (1, 120)}


def check_shopify_domain(domain: str) -> str:
    """The shop's ``*.myshopify.com`` domain, or a refusal: the same rule the OAuth install applies
    (``integrations.shopify.auth.valid_shop``), so a shop the worker could never reach is not stored."""
    shop = valid_shop(normalise_domain("shopify", domain))
    if shop is None:
        raise click.ClickException(
            f"{domain!r} is not a Shopify shop domain: give the shop's <name>.myshopify.com address "
            "(letters, digits and hyphens, then .myshopify.com), as shown in the shop's admin"
        )
    return shop


def check_store_address(runtime: Runtime, store_url: str) -> None:
    """Refuse a WooCommerce address that could never be called under this deployment's outbound
    rules: not a host name, plain http in production, a private address in production. Its name
    is not resolved here (the connect flow and the client check that on every call)."""
    parts = urlsplit(store_url)
    host = (parts.hostname or "").strip("[]")
    policy = OutboundPolicy.from_settings(runtime.settings)
    try:
        literal = bool(ipaddress.ip_address(host))
    except ValueError:
        literal = False
    if not literal and host != "localhost" and not _HOSTNAME.match(host):
        raise click.ClickException(f"{store_url!r} is not a store address: give it as https://your-store.example")
    if policy.https_only and parts.scheme != "https":
        raise click.ClickException(f"{store_url} is plain http: WooCommerce stores are called over https only here")
    if not policy.allow_private and (host == "localhost" or (literal and refused_address(host))):
        raise click.ClickException(f"{store_url} is a local or private address, which Relais never calls here")


def check_provider_options(provider: str, options: dict[str, str]) -> dict[str, str]:
    """Every option the provider requires, present and not blank; options without a provider refused."""
    if not provider:
        if options:
            raise click.ClickException("--provider-option was given without --provider: name the provider too")
        return options
    options = {k: v.strip() for k, v in options.items()}
    required = fulfilment.get(provider).required_options()
    missing = [name for name in required if not options.get(name)]
    if missing:
        asked = " ".join(f"--provider-option {name}=..." for name in missing)
        raise click.ClickException(f"provider {provider} needs {', '.join(missing)}: add {asked}")
    return options


def check_settings(given: dict[str, str]) -> dict[str, object]:
    """Shop settings from ``--setting``, checked as the settings page checks them and typed
    (numbers as numbers, yes/no as booleans); an unknown name or a bad value is refused."""
    unknown = sorted(set(given) - set(DEFAULT_SETTINGS))
    if unknown:
        raise click.ClickException(
            f"unknown setting {', '.join(unknown)} (known: {', '.join(sorted(DEFAULT_SETTINGS))})"
        )
    checked: dict[str, object] = {}
    for name, raw in given.items():
        value = raw.strip()
        if name in ("notify_customer", "hold_high_risk"):
            if value.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise click.ClickException(f"setting {name} is yes or no, not {raw!r}")
            checked[name] = value.lower() in ("1", "true", "yes", "on")
        elif name in _INTEGER_SETTINGS:
            low, high = _INTEGER_SETTINGS[name]
            if not value.lstrip("-").isdigit() or not low <= int(value) <= high:
                raise click.ClickException(f"setting {name} is a whole number between {low} and {high}, not {raw!r}")
            checked[name] = int(value)
        elif name in ("push_on", "location_id"):
            parsed = parse_settings({name: value}, set())
            if name in parsed.errors:
                raise click.ClickException(f"setting {name}: {parsed.errors[name]}, not {raw!r}")
            checked[name] = parsed.values[name]
        elif name == "fulfilment_mode":
            if value not in FULFILMENT_MODES:
                raise click.ClickException(f"setting {name} is one of {', '.join(FULFILMENT_MODES)}, not {raw!r}")
            checked[name] = value
        elif name == "hold_tags":
            checked[name] = list(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
        elif name == "required_address_fields":
            fields = [f.strip() for f in value.split(",") if f.strip()]
            allowed = {"address1", "city", "country_code", *OPTIONAL_ADDRESS_FIELDS}
            if not fields or set(fields) - allowed:
                raise click.ClickException(f"setting {name} lists fields among {', '.join(sorted(allowed))}")
            checked[name] = list(dict.fromkeys(["address1", "city", "country_code", *fields]))
        else:
            raise click.ClickException(f"setting {name} cannot be given on the command line; use the settings page")
    return checked


shop = AppGroup("shop", help="Register and list shops.")


@shop.command("add")
@click.argument("platform", type=click.Choice(platforms.names()))
@click.argument("domain")
@click.option("--token", default="", help="Admin API access token (Shopify: shpat_...).")
@click.option(
    "--provider",
    default="",
    help="Fulfilment provider; without it a new shop has none and its orders wait (see `shop provider`).",
)
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
    refusal = provider_refusal(runtime.settings, provider) if provider else ""
    if refusal:  # checked before anything is stored (production refuses the sandbox here)
        raise click.ClickException(refusal)
    options = check_provider_options(provider, parse_pairs(provider_options, "--provider-option"))
    shop_settings = check_settings(parse_pairs(settings, "--setting"))
    if platform == "shopify":
        domain = check_shopify_domain(domain)
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
        check_store_address(runtime, domain)
        credentials = dict(woo)
        shop_settings.setdefault("location_id", "store")  # WooCommerce: one stock figure per product
    try:
        with transaction(runtime.sessions) as session:
            row = upsert_shop(session, runtime.vault, platform, domain, credentials, provider, options, shop_settings)
            shop_id, shop_domain, shop_provider, token = row.id, row.domain, row.provider, row.webhook_token
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if shop_provider:
        click.echo(f"shop {shop_id}: {platform} {shop_domain} → {shop_provider}")
        _echo_provider_webhook(runtime, shop_provider, token)
    else:
        click.echo(f"shop {shop_id}: {platform} {shop_domain} → no provider yet (its orders are held until one is set)")
    if provider:
        _release(runtime, shop_id, "operator (shop add)")
    if platform == "shopify" and shop_settings.get("fulfilment_mode") == "service":
        _create_fulfilment_service(runtime, shop_id)
    if platform == "woocommerce":
        click.echo(f"webhook delivery URL: {runtime.settings.public_url.rstrip('/')}/webhooks/woocommerce/{shop_id}")


@shop.command("provider")
@click.argument("shop_ref", metavar="SHOP")
@click.argument("name")
@click.option("--provider-option", "provider_options", multiple=True, help="Provider setting KEY=VALUE (repeatable).")
def set_provider(shop_ref: str, name: str, provider_options: tuple[str, ...]) -> None:
    """Give a shop (id or domain) its provider: the credentials are tried with a live call first,
    then saved, and the orders waiting for a provider are sent."""
    runtime = current_app.extensions["relais"]
    refusal = provider_refusal(runtime.settings, name)
    if refusal:
        raise click.ClickException(refusal)
    options = check_provider_options(name, parse_pairs(provider_options, "--provider-option"))
    with runtime.sessions() as session:
        clauses = [Shop.domain == shop_ref.strip().lower()]
        if shop_ref.isdigit():
            clauses.append(Shop.id == int(shop_ref))
        found = session.scalars(select(Shop.id).where(or_(*clauses)).order_by(Shop.id)).all()
    if len(found) != 1:
        raise click.ClickException(f"no single shop {shop_ref!r}" + (" (several match)" if found else ""))
    result = shop_config.save_provider(runtime, found[0], name, options, "operator (shop provider)")
    if not result.ok:
        raise click.ClickException(result.message)
    click.echo(f"shop {found[0]} → {name}: {result.message}")
    with runtime.sessions() as session:
        _echo_provider_webhook(runtime, name, session.get(Shop, found[0]).webhook_token)
    _release(runtime, found[0], "operator (shop provider)")


def _echo_provider_webhook(runtime: Runtime, provider: str, token: str) -> None:
    """Where this shop's provider account must send its webhooks (the shop's own, unguessable URL)."""
    click.echo(f"provider webhook URL: {webhook_url(runtime.settings.public_url, provider, token)}")


def _create_fulfilment_service(runtime: Runtime, shop_id: int) -> None:
    """As an install does: the shop's fulfilment service (and its location) on Shopify, now; if
    Shopify cannot be reached, a job keeps trying and the merchant is told."""
    from integrations.errors import AuthError, InvalidRequestError, RetryableError
    from jobs.fulfilment_service import enqueue_setup, ensure_now

    try:
        click.echo(ensure_now(runtime, shop_id))
    except RetryableError as exc:
        enqueue_setup(runtime, shop_id)
        click.echo(f"fulfilment service not created yet ({exc}); a job will try again")
    except (AuthError, InvalidRequestError) as exc:
        raise click.ClickException(f"Shopify refused the fulfilment service: {exc}") from None


def _release(runtime: Runtime, shop_id: int, actor: str) -> None:
    sent = release_waiting(runtime, shop_id, actor)
    if sent:
        click.echo(f"{sent} order(s) waiting for a provider are being sent")


@shop.command("list")
def list_shops() -> None:
    """Every shop with its platform, provider and status (never its secrets)."""
    runtime = current_app.extensions["relais"]
    with runtime.sessions() as session:
        for row in session.scalars(select(Shop).order_by(Shop.id)):
            click.echo(f"{row.id:>4}  {row.platform:<12} {row.domain:<40} {row.provider or '(none)':<10} {row.status}")
