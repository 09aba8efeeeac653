"""Shop lifecycle: what follows an install, ``app/uninstalled``, and the privacy topics.

``jobs.events`` calls ``handle_event`` for these topics whatever the shop's status (``shop/redact``
arrives 48 hours after the uninstall). Every outcome is written to the audit log.

Uninstall stops all work for the shop at once: the status flips to ``uninstalled`` in the same
transaction that forgets the token, and every job checks that status before doing anything, so
jobs already queued for the shop find it inactive and return without a call.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlalchemy.orm import Session

from integrations.shopify import subscriptions
from integrations.shopify.app_config import app_config
from jobs import privacy
from jobs.parties import platform_for
from jobs.runtime import Runtime, get_runtime
from store import audit
from store.db import transaction
from store.installs import credentials, forget_tokens
from store.models import Shop, WebhookEvent

log = logging.getLogger(__name__)


def handle_event(runtime: Runtime, session: Session, shop: Shop, event: WebhookEvent) -> str:
    """Apply one lifecycle delivery for ``shop``; returns what happened."""
    if event.topic == "app/uninstalled":
        return uninstall(runtime, session, shop, event)
    if event.topic == "app/scopes_update":
        return _scopes_update(session, shop, event)
    if event.topic == "shop/redact":
        return privacy.redact_shop(session, shop, event)
    if event.topic == "customers/redact":
        return privacy.redact_customer(runtime, session, shop, event)
    if event.topic == "customers/data_request":
        return privacy.export_customer(session, shop, event)
    return f"stored ({event.topic}: no lifecycle action)"


def uninstall(runtime: Runtime, session: Session, shop: Shop, event: WebhookEvent | None = None) -> str:
    """Stop all work for the shop and forget its token; its data stays until ``shop/redact``."""
    triggered = _triggered_at(event)
    installed_at = credentials(runtime.vault, shop).get("installed_at")
    if triggered is not None and installed_at and triggered < float(installed_at):
        # A late (retried) delivery about an earlier install: the shop has been installed again since.
        audit.record(session, shop, "uninstall_ignored", "app/uninstalled older than the latest install", None)
        return "ignored: older than the latest install"
    was = shop.status
    shop.status = "uninstalled"
    forget_tokens(session, shop)
    audit.record(session, shop, "uninstalled", f"app uninstalled (was {was}); token forgotten", None, "shopify")
    return "uninstalled"


def _scopes_update(session: Session, shop: Shop, event: WebhookEvent) -> str:
    try:
        payload = json.loads(event.body)
    except ValueError:
        payload = {}
    current = payload.get("current") if isinstance(payload, dict) else None
    audit.record(session, shop, "scopes_update", "granted scopes changed", {"current": current}, "shopify")
    return "scopes recorded"


def _triggered_at(event: WebhookEvent | None) -> float | None:
    raw = (event.headers or {}).get("X-Shopify-Triggered-At") if event is not None else None
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def after_install(shop_id: int) -> str:
    """Job run after every install: make sure the shop has its webhook subscriptions (the TOML's
    topics; compliance topics exist only in the TOML): none at shop level for topics the deployed
    TOML subscribes app-wide, whose earlier shop-level copies are removed. Safe to repeat."""
    runtime = get_runtime()
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.status != "active" or shop.platform != "shopify":
            return "shop inactive"
        client = platform_for(runtime, shop).admin()  # type: ignore[attr-defined]
    address = runtime.settings.public_url.rstrip("/") + "/webhooks/shopify"
    # Topics the deployed TOML subscribes app-wide get no shop-level copy (each event would arrive twice).
    app_wide = subscriptions.app_wide_topics(runtime.settings.shopify_api_key)
    report = subscriptions.ensure(client, address, app_config().topics, app_wide)
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id)
        summary = (
            f"{len(report.present)} present, {len(report.created)} created, {len(report.refused)} refused by Shopify"
        )
        if report.app_wide:
            summary += f", {len(report.app_wide)} app-wide, {len(report.removed)} shop-level duplicates removed"
        audit.record(session, shop, "subscriptions", summary, {"address": address, **report.as_dict()})
    return summary
