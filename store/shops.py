"""Registering and updating shops, with their secrets sealed before they touch the database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations import fulfilment
from integrations.errors import ConfigError
from store.crypto import Vault
from store.models import Shop

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
    "required_address_fields": ["address1", "city", "country_code"],  # held when one is blank
}


def normalise_domain(platform: str, domain: str) -> str:
    domain = domain.strip().lower()
    if platform == "shopify":
        domain = domain.removeprefix("https://").removeprefix("http://").rstrip("/")
    return domain


def upsert_shop(
    session: Session,
    vault: Vault,
    platform: str,
    domain: str,
    credentials: Mapping[str, Any],
    provider: str,
    provider_options: Mapping[str, str],
    settings: Mapping[str, Any] | None = None,
) -> Shop:
    """Create or update the shop; checks the provider's required options. Caller commits."""
    cls = fulfilment.get(provider)
    missing = [name for name in cls.required_options() if not provider_options.get(name)]
    if missing:
        raise ConfigError(f"provider {provider} needs --provider-option for: {', '.join(missing)}")
    domain = normalise_domain(platform, domain)
    shop = session.execute(select(Shop).where(Shop.platform == platform, Shop.domain == domain)).scalar_one_or_none()
    if shop is None:
        shop = Shop(platform=platform, domain=domain, settings=dict(DEFAULT_SETTINGS))
        session.add(shop)
    shop.credentials_enc = vault.seal(dict(credentials))
    shop.provider = provider
    shop.provider_options_enc = vault.seal(dict(provider_options))
    shop.settings = {**DEFAULT_SETTINGS, **(shop.settings or {}), **(settings or {})}
    shop.status = "active"
    session.flush()
    return shop
