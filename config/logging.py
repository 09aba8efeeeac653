"""Logging set-up, with a filter that keeps secrets out of every log line.

Tokens have recognisable shapes (Shopify ``shpat_``/``shpua_``, WooCommerce ``ck_``/``cs_``,
Standard Webhooks ``whsec_``, ``Bearer …`` headers, keys in query strings); anything looking like
one is masked before the record is written, whatever module logged it, exception text included.
The patterns live in ``store/scrub.py``: the same ones keep them out of stored messages.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from config import log_context
from store.scrub import scrub


def redact(text: str) -> str:
    """``text`` with credentials masked (see ``store.scrub.scrub``)."""
    return scrub(text)


class RedactSecrets(logging.Filter):
    """Masks credentials in the message and in the exception text (``requests`` errors carry the
    full URL, query-string keys included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            # Formatter.format reuses exc_text when set: format it here, scrubbed.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``LOG_FORMAT=json``, production's default): ``time`` (UTC),
    ``level``, ``logger``, ``message``, and ``shop_id``/``order_id``/``job_id``/``event_id`` when
    the line is logged inside a job or request that knows them (``config.log_context``), so a log
    platform can show one order's or one job's story. Message and exception text are scrubbed
    here too (the ``RedactSecrets`` filter already did): ids are the only context ever added."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        line.update(log_context.current())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str, log_format: str = "text") -> None:
    """One stream handler on the root logger, with the redaction filter (idempotent: a second
    call only changes the level and the format)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.setFormatter(formatter_for(log_format))
            return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(RedactSecrets())
    root.addHandler(handler)
