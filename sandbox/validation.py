"""Validation of the sandbox's create-order body: field → messages, as ShipBob answers a 422.

Pure (no Flask, no database); ``sandbox.api`` answers 422 ``{"errors": ...}`` with the result.
"""

from __future__ import annotations

from typing import Any

MAX_QUANTITY = 100_000
RECIPIENT_REQUIRED = ("name", "address1", "city", "country_code")
RECIPIENT_FIELDS = (*RECIPIENT_REQUIRED, "address2", "province_code", "zip", "phone", "email")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _check_length(errors: dict[str, list[str]], field: str, value: object, limit: int) -> None:
    if len(text(value)) > limit:
        errors[field] = [f"must be at most {limit} characters"]


def validate_order(body: Any) -> dict[str, list[str]]:
    """Field → messages for an order body; empty when it can be accepted. Pure.

    Limits are the columns' (``sandbox.models``), so nothing valid here fails on insert."""
    if not isinstance(body, dict):
        return {"body": ["must be a JSON object"]}
    errors: dict[str, list[str]] = {}
    for field, limit in (("reference", 128), ("shipping_method", 255)):
        _check_length(errors, field, body.get(field), limit)
        if not text(body.get(field)):
            errors[field] = ["is required"]
    recipient = body.get("recipient")
    if not isinstance(recipient, dict):
        errors["recipient"] = ["is required"]
    else:
        for field in RECIPIENT_REQUIRED:
            if not text(recipient.get(field)):
                errors[f"recipient.{field}"] = ["is required"]
        country = text(recipient.get("country_code"))
        if country and not (len(country) == 2 and country.isalpha()):
            errors["recipient.country_code"] = ["must be an ISO 3166-1 alpha-2 code"]
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines:
        errors["lines"] = ["must list at least one line"]
        return errors
    for i, line in enumerate(lines):
        if not isinstance(line, dict):
            errors[f"lines[{i}]"] = ["must be an object"]
            continue
        for field, limit in (("sku", 255), ("name", 255), ("line_id", 64)):
            _check_length(errors, f"lines[{i}].{field}", line.get(field), limit)
        if not text(line.get("sku")):
            errors[f"lines[{i}].sku"] = ["is required"]
        quantity = line.get("quantity")
        if not is_int(quantity) or not 1 <= quantity <= MAX_QUANTITY:
            errors[f"lines[{i}].quantity"] = [f"must be a whole number from 1 to {MAX_QUANTITY}"]
    return errors
