"""The merchant's configuration of a shop: its settings, and its provider with credentials.

Credentials are tried with a live call to the provider before anything is saved, so a typo is
refused on the spot instead of failing the next order; they are sealed by the vault and never
shown back (``masked`` gives the hint the page displays). Platform-neutral.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations import fulfilment
from integrations.errors import AuthError, ConfigError, InvalidRequestError, NotFoundError, RetryableError
from integrations.fulfilment.base import ProviderContext
from jobs.actions import ActionResult
from jobs.parties import provider_options
from jobs.runtime import Runtime
from store import audit
from store.db import transaction
from store.models import Shop
from store.shops import DEFAULT_SETTINGS

CHECK_REFERENCE = "relais-connection-check"  # looked up, never created: a read-only call


def option_names(provider: str) -> tuple[str, ...]:
    """The credential fields the page asks for: the provider's required ones, and a token."""
    required = fulfilment.get(provider).required_options()
    return tuple(dict.fromkeys(("token", *required)))


def masked(value: str) -> str:
    """Enough of a stored secret to recognise it, never enough to use it."""
    if not value:
        return ""
    return "••••" + value[-4:] if len(value) >= 12 else "••••"


def save_settings(runtime: Runtime, shop_id: int, changes: Mapping[str, Any], actor: str) -> ActionResult:
    """Merge validated setting values into the shop's settings (only known names)."""
    unknown = sorted(set(changes) - set(DEFAULT_SETTINGS))
    if unknown:
        return ActionResult(False, f"unknown settings: {', '.join(unknown)}")
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id)
        if shop is None:
            return ActionResult(False, "no such shop")
        before = {**DEFAULT_SETTINGS, **(shop.settings or {})}
        shop.settings = {**before, **changes}
        changed = sorted(k for k in changes if before.get(k) != changes[k])
        audit.record(session, shop, "settings", "settings saved", {"changed": changed}, actor)
        service_needed = "fulfilment_mode" in changed and shop.settings["fulfilment_mode"] == "service"
    if service_needed:  # Shopify fulfilment-service mode: its service and location, made by a job
        from jobs.fulfilment_service import enqueue_setup

        enqueue_setup(runtime, shop_id)
    return ActionResult(True, "Settings saved" if changed else "Nothing changed")


def check_provider(runtime: Runtime, provider: str, options: Mapping[str, str]) -> ActionResult:
    """One read-only call with these credentials: do they work?"""
    try:
        cls = fulfilment.get(provider)
        adapter = cls(dict(options), ProviderContext(http=runtime.http, settings=runtime.settings, redis=runtime.redis))
        adapter.find_order(CHECK_REFERENCE)
    except ConfigError as exc:
        return ActionResult(False, str(exc))
    except AuthError as exc:
        return ActionResult(False, f"{provider} refused these credentials: {exc}")
    except RetryableError as exc:
        return ActionResult(False, f"{provider} could not be reached, nothing saved: {exc}")
    except NotFoundError:
        pass  # the account answered; it just has no such order
    except InvalidRequestError as exc:
        return ActionResult(False, f"{provider} refused the check: {exc}")
    return ActionResult(True, f"{provider} accepted the credentials")


def save_provider(runtime: Runtime, shop_id: int, provider: str, given: Mapping[str, str], actor: str) -> ActionResult:
    """Test, then store the provider and its credentials. A blank field keeps the stored value
    when the provider is unchanged (the page never shows secrets, so it cannot send them back)."""
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None:
            return ActionResult(False, "no such shop")
        kept = provider_options(runtime, shop) if shop.provider == provider else {}
    try:
        names = option_names(provider)
    except ConfigError as exc:
        return ActionResult(False, str(exc))
    options = {**kept, **{k: v.strip() for k, v in given.items() if k in names and v.strip()}}
    missing = [k for k in fulfilment.get(provider).required_options() if not options.get(k)]
    if missing:
        return ActionResult(False, f"{provider} needs: {', '.join(missing)}")
    checked = check_provider(runtime, provider, options)
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id)
        if shop is None:
            return ActionResult(False, "no such shop")
        if checked.ok:
            shop.provider = provider
            shop.provider_options_enc = runtime.vault.seal(options)
        kind = "provider_saved" if checked.ok else "provider_refused"
        audit.record(session, shop, kind, checked.message, {"provider": provider}, actor)
    return ActionResult(checked.ok, f"Saved: {checked.message}" if checked.ok else checked.message)
