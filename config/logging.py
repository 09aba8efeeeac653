"""Logging set-up, with a filter that keeps secrets out of every log line.

Tokens have recognisable shapes (Shopify ``shpat_``/``shpua_``, WooCommerce ``ck_``/``cs_``,
Standard Webhooks ``whsec_``, ``Bearer …`` headers); anything looking like one is masked before
the record is written, whatever module logged it.
"""

from __future__ import annotations

import logging
import re

SECRET_PATTERNS = re.compile(
    r"(shp(?:at|ua|ca|ss|rt)_[A-Za-z0-9]+|\b(?:ck|cs)_[A-Za-z0-9]{8,}|whsec_[A-Za-z0-9+/=]+|"
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]+|(?i:access_token|refresh_token|client_secret)[\"']?\s*[:=]\s*[\"']?[^\s\"'&,]+)"
)


def redact(text: str) -> str:
    return SECRET_PATTERNS.sub(lambda m: m.group(0)[:6] + "…[redacted]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def configure_logging(level: str) -> None:
    """One stream handler on the root logger, with the redaction filter (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if any(isinstance(f, RedactSecrets) for f in handler.filters):
            return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root.addHandler(handler)
