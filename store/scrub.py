"""Credentials out of every message Relais keeps: log lines and stored text alike.

A failed call's exception text is the most useful thing to show a merchant or an operator, and
the most dangerous: ``requests`` puts the full URL in it, query string included, so a WooCommerce
store reached with query-string keys (``consumer_key=ck_…&consumer_secret=cs_…``) or OAuth 1.0a
(``oauth_consumer_key=…&oauth_signature=…``) would have its keys written into an order's
timeline, a merchant notice or the audit log, where the settings page shows them. Tokens have
recognisable shapes too (Shopify ``shpat_``/``shpua_``…, WooCommerce ``ck_``/``cs_``, Standard
Webhooks ``whsec_``, ``Bearer``/``Basic`` headers, JWTs). One scrubber masks them all; the log
filter (``config/logging.py``) and the stored-message columns (``scrub_stored_messages``, wired
by ``store/models.py``) both use it, so a writer cannot forget.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event

MASK = "[redacted]"

# Parameter names whose value is a credential wherever it appears: query strings, form bodies,
# JSON ("name": "value"), headers ("name: value"). Matched as whole names (``webhook_token`` too).
_CREDENTIAL_PARAMETERS = (
    r"consumer_key|consumer_secret|oauth_consumer_key|oauth_signature|oauth_token|oauth_token_secret|"
    r"access_token|refresh_token|id_token|client_secret|api_key|apikey|api_secret|password|passwd|"
    r"secret|webhook_secret|token|x-shopify-access-token|x-wc-webhook-signature|signature|hmac"
)

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # https://user:password@host → the userinfo goes
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE), rf"\g<keep>{MASK}@"),
    # name=value, name: value, "name": "value" (query strings, forms, JSON, headers)
    (
        re.compile(
            rf"(?P<keep>(?<![A-Za-z0-9])(?:{_CREDENTIAL_PARAMETERS})[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"'&,;}}\]]+)",
            re.IGNORECASE,
        ),
        rf"\g<keep>{MASK}",
    ),
    # the OAuth authorization code of a callback URL
    (re.compile(r"(?P<keep>[?&]code=)[^\s&#]+"), rf"\g<keep>{MASK}"),
    # Authorization headers
    (re.compile(r"(?P<keep>\b(?i:bearer)\s+)[A-Za-z0-9._~+/=-]+"), rf"\g<keep>{MASK}"),
    (re.compile(r"(?P<keep>\b(?i:basic)\s+)[A-Za-z0-9+/]{12,}={0,2}"), rf"\g<keep>{MASK}"),
    # token shapes, wherever they stand
    (re.compile(r"(?P<keep>\bshp(?:at|ua|ca|ss|rt|pa|tka)_)[A-Za-z0-9]+"), rf"\g<keep>{MASK}"),
    (re.compile(r"(?P<keep>\b(?:ck|cs)_)[A-Za-z0-9]{8,}"), rf"\g<keep>{MASK}"),
    (re.compile(r"(?P<keep>\bwhsec_)[A-Za-z0-9+/=]+"), rf"\g<keep>{MASK}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), f"jwt:{MASK}"),
)


def scrub(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``[redacted]`` (names kept)."""
    if not text:
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def scrub_value(value: Any) -> Any:
    """Strings scrubbed inside any JSON-like value (dicts, lists); other values as they are."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: scrub_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_value(item) for item in value)
    return value


# Every column holding a message written from an outside party's answer or an exception:
# table → columns. Data columns (payloads, addresses, tracking) are never rewritten.
STORED_MESSAGES: dict[str, tuple[str, ...]] = {
    "order_transitions": ("reason",),
    "orders": ("failure_reason",),
    "fulfilment_attempts": ("detail",),
    "webhook_events": ("error",),
    "audit_log": ("summary", "detail"),
    "stock_sync_runs": ("error", "skipped"),
    "shop_sync": ("notice",),
    "order_edits": ("reason",),
}


def _on_set(target: object, value: Any, oldvalue: Any, initiator: object) -> Any:
    return scrub_value(value)


def _attach(mapper: Any, class_: type) -> None:
    for column in STORED_MESSAGES.get(getattr(mapper.local_table, "name", None), ()):
        attribute = getattr(class_, column)
        if not event.contains(attribute, "set", _on_set):
            event.listen(attribute, "set", _on_set, retval=True)


def scrub_stored_messages(base: Any) -> None:
    """Scrub every ``STORED_MESSAGES`` column as it is assigned (constructor included), like a
    ``@validates`` on each: whichever job writes the message, what reaches the row is clean.

    Attached as each mapper is configured (before the first query or instance), so the order
    the model modules are imported in does not matter.
    """
    if not event.contains(base, "mapper_configured", _attach):
        event.listen(base, "mapper_configured", _attach, propagate=True)
