"""Connecting a store: the authorize URL, our secrets, and the webhooks we keep alive.

``/wc-auth/v1/authorize`` [class-wc-auth.php] takes ``app_name``, ``scope``, ``user_id``,
``return_url`` and ``callback_url``, all mandatory; ``callback_url`` must be ``https://``. The
keys come back as an unsigned JSON POST that does not name the store, so ``user_id`` carries a
one-time state we issued for one store URL: that binding is the only proof of origin.

Webhooks are ours to create (``POST /wc/v3/webhooks``) with our own alphanumeric secret: a
secret typed in the admin is stored through ``sanitize_text_field`` and entity-encoded, the
cause of most "invalid signature" reports (woocommerce#21693, #22500). WooCommerce disables a
webhook after its 7th consecutive failure and never re-sends what was lost, so a scheduled check
lists them, re-activates disabled ones (the failure count is not reset, so the next failure
disables it again) and recreates missing ones; reconciliation recovers what was lost meanwhile.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from integrations.errors import ConfigError
from integrations.platforms import WebhookReport
from integrations.woocommerce.client import WooClient
from integrations.woocommerce.webhooks import SUBSCRIBED_TOPICS

APP_NAME = "Relais"
SCOPE = "read_write"
_ALPHANUMERIC = string.ascii_letters + string.digits


def normalise_store_url(raw: str) -> str:
    """``Shop.Example.com/`` → ``https://shop.example.com``; the site's address, path kept."""
    raw = raw.strip()
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{raw!r} is not a store address (https://your-store.example)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("the store address takes no user, password, query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{raw!r} is not a store address (https://your-store.example)") from None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def new_secret(length: int = 40) -> str:
    """A webhook secret of letters and digits: nothing WordPress would entity-encode."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def new_state() -> str:
    return secrets.token_urlsafe(32)


def authorize_url(store_url: str, state: str, callback_url: str, return_url: str) -> str:
    """Where to send the merchant to approve our keys; refuses a non-HTTPS callback as WooCommerce would."""
    if not callback_url.startswith("https://"):
        raise ConfigError(
            f"WooCommerce only posts keys to an https:// callback_url, and ours would be {callback_url}: "
            "set RELAIS_PUBLIC_URL to the service's https address, or use the manual keys form"
        )
    query = urlencode(
        {
            "app_name": APP_NAME,
            "scope": SCOPE,
            "user_id": state,
            "return_url": return_url,
            "callback_url": callback_url,
        }
    )
    return f"{store_url}/wc-auth/v1/authorize?{query}"


def ensure_webhooks(
    client: WooClient,
    delivery_url: str,
    secret: str,
    *,
    rotate_secret: bool = False,
    topics: Sequence[str] = SUBSCRIBED_TOPICS,
) -> WebhookReport:
    """Make one active webhook per topic point at ``delivery_url``. Idempotent.

    ``rotate_secret`` (at connect time) also writes ``secret`` onto webhooks we find, since the
    secret is write-only and the one they hold may be an older one of ours.
    """
    report = WebhookReport()
    ours: dict[str, dict[str, Any]] = {}
    for hook in client.pages("webhooks", {"status": "all"}):
        if hook.get("delivery_url") == delivery_url and hook.get("topic") in topics:
            ours.setdefault(hook["topic"], hook)
    for topic in topics:
        hook = ours.get(topic)
        if hook is None:
            client.post(
                "webhooks",
                {"name": f"{APP_NAME} {topic}", "topic": topic, "delivery_url": delivery_url, "secret": secret},
            )
            report.created.append(topic)
            continue
        changes: dict[str, str] = {"secret": secret} if rotate_secret else {}
        if hook.get("status") == "disabled":
            changes["status"] = "active"
            report.reactivated.append(topic)
            report.problems.append(
                f"webhook {topic} (id {hook.get('id')}) had been disabled by WooCommerce after repeated delivery "
                "failures; it is active again and missed orders are recovered by reconciliation"
            )
        elif hook.get("status") == "paused" and rotate_secret:
            changes["status"] = "active"
        elif hook.get("status") == "paused":
            report.problems.append(
                f"webhook {topic} (id {hook.get('id')}) is paused in WooCommerce: orders arrive "
                "only through reconciliation until it is set active"
            )
        if changes:
            client.put(f"webhooks/{hook['id']}", changes)
    return report


def manual_credentials(
    store_url: str, consumer_key: str, consumer_secret: str, webhook_secret: str
) -> tuple[str, dict[str, str]]:
    """The normalised store URL and the credentials to store for a store registered by hand
    (``shop add woocommerce``); refuses an empty webhook secret, which would make any body valid."""
    if not (consumer_key.startswith("ck_") and consumer_secret.startswith("cs_")):
        raise ConfigError("WooCommerce needs --consumer-key ck_... and --consumer-secret cs_...")
    if not webhook_secret:
        raise ConfigError("WooCommerce needs --webhook-secret: the secret set on the store's webhooks")
    return normalise_store_url(store_url), {
        "consumer_key": consumer_key,
        "consumer_secret": consumer_secret,
        "webhook_secret": webhook_secret,
    }
