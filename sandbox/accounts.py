"""Sandbox accounts and the secret each one signs its webhooks with.

An account is the SHA-256 of its bearer token (no raw token is stored). Each account signs its
shipment webhooks with a Standard Webhooks secret of its own, derived from the account and the
process's ``SANDBOX_WEBHOOK_SECRET`` (``Settings.sandbox_secret``): one account cannot sign for
another, so an order created under another shop's reference is refused at Relais' receiver,
which verifies with the secret of that shop's own sandbox account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any


def account_of(token: str) -> str:
    """The account key of a bearer token (its SHA-256), so no raw token is ever stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def webhook_secret(settings: Any, account: str) -> str:
    """The ``whsec_…`` secret of one account: HMAC-SHA256(settings' sandbox secret, account)."""
    digest = hmac.new(settings.sandbox_secret.encode(), b"sandbox-account:" + account.encode(), "sha256").digest()
    return "whsec_" + base64.b64encode(digest).decode()


def token_webhook_secret(settings: Any, token: str) -> str:
    """The secret of the account whose bearer token is ``token`` (what a shop's provider option holds)."""
    return webhook_secret(settings, account_of(token))
