"""Build a shop's platform and provider adapters from its row: decrypt, look up the registry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from integrations import fulfilment, platforms
from integrations.fulfilment.base import FulfilmentProvider, ProviderContext
from integrations.platforms import Platform, PlatformContext, ShopAccess
from jobs.runtime import Runtime
from store.models import Shop


def shop_access(runtime: Runtime, shop: Shop) -> ShopAccess:
    return ShopAccess(
        id=shop.id,
        platform=shop.platform,
        domain=shop.domain,
        credentials=runtime.vault.open(shop.credentials_enc) or {},
        settings=dict(shop.settings or {}),
    )


def provider_options(runtime: Runtime, shop: Shop) -> dict[str, str]:
    return dict(runtime.vault.open(shop.provider_options_enc) or {})


def provider_for(runtime: Runtime, shop: Shop) -> FulfilmentProvider:
    """The shop's fulfilment provider adapter, with its decrypted options."""
    cls = fulfilment.get(shop.provider)
    context = ProviderContext(http=runtime.http, settings=runtime.settings, redis=runtime.redis)
    return cls(provider_options(runtime, shop), context)


def platform_for(runtime: Runtime, shop: Shop, credentials: Mapping[str, Any] | None = None) -> Platform:
    """The shop's platform adapter (with other credentials when given: keys not yet trusted)."""
    cls = platforms.get(shop.platform)
    context = PlatformContext(http=runtime.http, settings=runtime.settings, redis=runtime.redis)
    access = shop_access(runtime, shop)
    if credentials is not None:
        access = replace(access, credentials=dict(credentials))
    return cls(access, context)
