"""An Admin API client that survives the hourly expiry of expiring offline tokens.

On a 401 (``TokenRejected``: Shopify ran nothing) it asks its ``refresh`` callable once for a new
access token, given the one that was refused, and sends the same call again. The callable owns
the storage and the locking (``jobs.tokens``); this module only knows when to ask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from integrations.shopify.admin import JSON, AdminClient, TokenRejected


class RefreshingAdminClient(AdminClient):
    def __init__(self, *args: Any, refresh: Callable[[str], str | None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refresh = refresh
        self._refreshed = False

    def _execute(self, document: str, variables: Mapping[str, Any] | None, *, resend_unknown: bool) -> JSON:
        try:
            return super()._execute(document, variables, resend_unknown=resend_unknown)
        except TokenRejected:
            if self._refreshed:
                raise
            self._refreshed = True  # once per client: a second 401 is not an expiry
            fresh = self._refresh(self._token)
            if not fresh or fresh == self._token:
                raise
            self._token = fresh
            return super()._execute(document, variables, resend_unknown=resend_unknown)
