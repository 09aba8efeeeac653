"""The few named errors of Relais.

Retry is decided by type, never by matching strings: a job catches ``RetryableError`` and asks RQ
to run it again no sooner than ``retry_after``; ``InvalidRequestError`` fails the order at once
with the party's own message; the web layer maps ``WebhookRejected`` to its status code.
"""

from __future__ import annotations


class RelaisError(Exception):
    """Base of every error Relais raises on purpose."""


class ConfigError(RelaisError):
    """A setting is missing or malformed; the message names the variable."""


class RetryableError(RelaisError):
    """A transient failure (timeout, 5xx, 429): the same call may succeed later."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class InvalidRequestError(RelaisError):
    """The party refused the request as invalid; repeating it unchanged cannot succeed."""

    def __init__(self, message: str, status: int | None = None, details: object = None):
        super().__init__(message)
        self.status = status
        self.details = details


class NotCancellableError(RelaisError):
    """The order is past the point where the provider can cancel it (picked, packed, shipped)."""


class AuthError(RelaisError):
    """Credentials were refused (401/403): the merchant must fix them; retrying will not help."""


class NotFoundError(RelaisError):
    """The party has no such object."""


class WebhookRejected(RelaisError):
    """An incoming webhook is refused; ``status`` is the HTTP answer (400, 401, 404, 413)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class NotEditableError(RelaisError):
    """The provider refuses to change the order now (picked, packed, shipped, or not allowed)."""
