"""Registering and updating shops, with their secrets sealed before they touch the database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations import fulfilment
from integrations.errors import ConfigError
from store.crypto import Vault
from store.models import Shop

if TYPE_CHECKING:
    from config import Settings

# A new shop's provider until the merchant saves and tests one (or an operator sets one): its
# orders are received and held "waiting for a provider", nothing is sent anywhere.
NO_PROVIDER = ""
# Stand-ins that exist for development only. The registry is process-wide, so this is checked
# against the deployment's settings as well: production refuses them whatever got registered.
DEVELOPMENT_PROVIDERS = frozenset({"sandbox"})

# Per-shop settings (JSON on the shop row); every module reads these names.
DEFAULT_SETTINGS: dict[str, Any] = {
    "push_on": "paid",  # paid | created
    "notify_customer": True,  # the customer gets the platform's shipping e-mail with tracking
    "location_id": "",  # the shop location the provider's stock and shipments belong to (Shopify: a GID)
    "stock_interval_minutes": 5,
    "safety_buffer": 0,  # units held back from every SKU's available quantity
    "sku_buffers": {},  # per-SKU override of safety_buffer: {"SKU": n}
    "stock_reserve_pushed_minutes": 10,  # orders pushed this recently still count as reserved
    "stock_locations": {},  # provider location → shop location; empty: all count towards location_id
    "hold_tags": [],  # orders carrying one of these tags are held for the merchant
    "hold_high_risk": False,  # hold orders the platform marks as high fraud risk
    "risk_wait_minutes": 10,  # how long an order waits for a pending risk assessment (jobs.fraud)
    "required_address_fields": ["address1", "city", "country_code"],  # held when one is blank
    # Shopify: order_webhooks (every paid order is pushed) | service (Relais is a fulfilment service:
    # only fulfilment orders Shopify assigns to its location are pushed). OAuth installs get service.
    "fulfilment_mode": "order_webhooks",
}


def normalise_domain(platform: str, domain: str) -> str:
    domain = domain.strip().lower()
    if platform == "shopify":
        domain = domain.removeprefix("https://").removeprefix("http://").rstrip("/")
    return domain


def provider_names(settings: Settings) -> list[str]:
    """The providers a shop can be given in this deployment: the registry's, without the
    development stand-ins unless the sandbox is enabled (never in production)."""
    return [name for name in fulfilment.names() if settings.sandbox_enabled or name not in DEVELOPMENT_PROVIDERS]


def provider_refusal(settings: Settings, name: str) -> str:
    """Why ``name`` cannot be a shop's provider here, in plain words ("" when it can)."""
    offered = provider_names(settings)
    if name in offered:
        return ""
    choices = ", ".join(offered) or "none"
    if not name:
        return f"choose a provider ({choices})"
    if name in DEVELOPMENT_PROVIDERS:
        return (
            f"{name} is a simulated fulfilment centre for development; it is not available in "
            f"{settings.environment} (choose one of: {choices})"
        )
    return f"unknown provider {name!r} (choose one of: {choices})"


def has_provider(shop: Shop) -> bool:
    """Whether the shop's orders can go anywhere: it names a provider this process has. A shop
    with none (new installs), or naming one this deployment lacks (the sandbox in production),
    waits for the merchant to save and test a provider."""
    return provider_available(shop.provider)


def provider_available(name: str) -> bool:
    """``has_provider`` for a provider name read on its own (a column in a listing query)."""
    return bool(name) and name in fulfilment.names()


def upsert_shop(
    session: Session,
    vault: Vault,
    platform: str,
    domain: str,
    credentials: Mapping[str, Any],
    provider: str | None,
    provider_options: Mapping[str, str],
    settings: Mapping[str, Any] | None = None,
) -> Shop:
    """Create or update the shop; checks the provider's required options. Caller commits.

    No provider (None or ""): a new shop starts without one, an existing shop keeps its own (with
    its options), so re-registering a shop never takes its provider away."""
    if provider:
        cls = fulfilment.get(provider)
        missing = [name for name in cls.required_options() if not provider_options.get(name)]
        if missing:
            raise ConfigError(f"provider {provider} needs --provider-option for: {', '.join(missing)}")
    elif provider_options:
        raise ConfigError("provider options were given without a provider (--provider)")
    domain = normalise_domain(platform, domain)
    shop = session.execute(select(Shop).where(Shop.platform == platform, Shop.domain == domain)).scalar_one_or_none()
    if shop is None:
        shop = Shop(platform=platform, domain=domain, settings=dict(DEFAULT_SETTINGS), provider=NO_PROVIDER)
        shop.provider_options_enc = vault.seal({})
        session.add(shop)
    shop.credentials_enc = vault.seal(dict(credentials))
    if provider:
        shop.provider = provider
        shop.provider_options_enc = vault.seal(dict(provider_options))
    shop.settings = {**DEFAULT_SETTINGS, **(shop.settings or {}), **(settings or {})}
    shop.status = "active"
    session.flush()
    return shop
