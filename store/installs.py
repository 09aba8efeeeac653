"""A shop's install state and its Shopify tokens, sealed by the vault before they touch the database.

The token pair (access token + rotating refresh token) and their expiries live together in the
shop's encrypted credentials and are always replaced together, by one UPDATE: a refresh token is
spent on use, so storing a new access token without its new refresh token (or the reverse) would
lose the shop.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from integrations.shopify.oauth import TokenSet
from store import audit
from store.crypto import Vault
from store.models import Shop, utcnow
from store.shops import DEFAULT_SETTINGS, NO_PROVIDER

# None until the merchant saves and tests theirs on the settings page: a new shop's orders are
# received and held "waiting for a provider", never sent to a stand-in.
NEW_SHOP_PROVIDER = NO_PROVIDER


def find_shop(session: Session, platform: str, domain: str) -> Shop | None:
    return session.execute(select(Shop).where(Shop.platform == platform, Shop.domain == domain)).scalar_one_or_none()


def install_shopify(session: Session, vault: Vault, domain: str, tokens: TokenSet, how: str) -> Shop:
    """Create the shop, or bring an uninstalled one back, with its new tokens. Keeps an existing
    shop's provider and settings (a reinstall is not a reset). Caller commits."""
    shop = find_shop(session, "shopify", domain)
    if shop is None:
        shop = Shop(
            platform="shopify",
            domain=domain,
            provider=NEW_SHOP_PROVIDER,
            provider_options_enc=vault.seal({}),
            settings={**DEFAULT_SETTINGS, "fulfilment_mode": "service"},  # an app install: a fulfilment service
        )
        session.add(shop)
    was = shop.status if shop.id else "new"
    shop.credentials_enc = vault.seal({**tokens.as_credentials(), "installed_at": time.time()})
    shop.status = "active"
    session.flush()
    audit.record(session, shop, "installed", f"installed by {how} (was {was})", {"scope": tokens.scope}, "shopify")
    return shop


def credentials(vault: Vault, shop: Shop) -> dict[str, Any]:
    return dict(vault.open(shop.credentials_enc) or {})


def store_tokens(session: Session, vault: Vault, shop: Shop, tokens: TokenSet) -> None:
    """Replace the shop's token pair in one UPDATE (other credential fields are kept)."""
    sealed = vault.seal({**credentials(vault, shop), **tokens.as_credentials()})
    session.execute(update(Shop).where(Shop.id == shop.id).values(credentials_enc=sealed, updated_at=utcnow()))
    set_committed_value(shop, "credentials_enc", sealed)  # the loaded object agrees, with no second UPDATE


def forget_tokens(session: Session, shop: Shop) -> None:
    """After ``app/uninstalled`` the tokens are dead: keep none of them."""
    session.execute(update(Shop).where(Shop.id == shop.id).values(credentials_enc=None, updated_at=utcnow()))
    set_committed_value(shop, "credentials_enc", None)
