"""What every route shares at the HTTP edge: integer path parameters that fit the database, and
refusals on webhook addresses answered as JSON.

``<int:…>`` in a URL is a database id (a signed 64-bit BIGINT on PostgreSQL, INTEGER on
SQLite). Werkzeug's own converter accepts any digit run, so ``/webhooks/woocommerce/<2**64>``
reached the query and failed there (a 500). The converter installed here refuses out-of-range
ids before the view runs: the route does not match, the answer is 404, no query is made.

Werkzeug answers what never reaches a view (unknown address, wrong method, a body over
``MAX_CONTENT_LENGTH``, a malformed request) with an HTML page; a webhook sender gets
``{"error": reason}`` instead, like every refusal ``web.webhooks.rejected`` makes.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map, ValidationError

log = logging.getLogger(__name__)

BIGINT_MAX = 2**63 - 1
WEBHOOK_PATHS = "/webhooks/"
_REASONS = {
    400: "malformed request",
    404: "no webhook receiver at this address",
    405: "method not allowed: webhooks are POSTed",
    413: "body too large",
}


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` limited to what a BIGINT id column holds (``max`` may lower it further)."""

    def __init__(
        self, map: Map, fixed_digits: int = 0, min: int | None = None, max: int | None = None, signed: bool = False
    ) -> None:
        bound = BIGINT_MAX if max is None else max
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=bound, signed=signed)

    def to_python(self, value: str) -> Any:
        if len(value) > len(str(BIGINT_MAX)):  # before int(): no 10,000-digit conversions
            raise ValidationError()
        return super().to_python(value)


def json_refusal(error: HTTPException) -> Any:
    """On webhook addresses, the HTTP error as ``{"error": reason}``; elsewhere, Flask's default."""
    if not request.path.startswith(WEBHOOK_PATHS) or error.code not in _REASONS:
        return error
    log.info("webhook request refused (%s) on %s", error.code, request.path)
    response = jsonify(error=_REASONS[error.code])
    if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response, error.code


def install(app: Flask) -> None:
    """Call before any blueprint is registered: rules bind their converters when added."""
    app.url_map.converters["int"] = BoundedIntConverter
    for code in _REASONS:
        app.register_error_handler(code, json_refusal)
