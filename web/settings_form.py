"""The settings form → validated shop settings. Pure: a mapping of form fields in, values and
errors out, so every rule is tested with plain dicts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

OPTIONAL_ADDRESS_FIELDS = {"name": "recipient name", "zip": "postcode", "province_code": "province", "phone": "phone"}
_LOCATION = re.compile(r"^(gid://[A-Za-z]+/Location/\d+|\d+|[A-Za-z0-9_.:-]{1,64})$")
_SKU_LINE = re.compile(r"^\s*(?P<sku>[^=\s][^=]*?)\s*[=:]\s*(?P<n>-?\d+)\s*$")


@dataclass
class Parsed:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _int(form: Mapping[str, str], name: str, low: int, high: int, out: Parsed) -> None:
    raw = (form.get(name) or "").strip()
    try:
        value = int(raw)
    except ValueError:
        out.errors[name] = "a whole number"
        return
    if not low <= value <= high:
        out.errors[name] = f"between {low} and {high}"
        return
    out.values[name] = value


def parse_sku_buffers(text: str) -> tuple[dict[str, int], list[str]]:
    """``SKU = n`` per line (``:`` works too); returns the map and the lines not understood."""
    buffers: dict[str, int] = {}
    bad: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _SKU_LINE.match(line)
        if match is None or int(match["n"]) < 0:
            bad.append(line.strip())
            continue
        buffers[match["sku"].strip()] = int(match["n"])
    return buffers, bad


def format_sku_buffers(buffers: Mapping[str, int]) -> str:
    return "\n".join(f"{sku} = {n}" for sku, n in sorted(buffers.items()))


def parse_settings(form: Mapping[str, str], checked: set[str]) -> Parsed:
    """``form``: text fields; ``checked``: names of ticked checkboxes (``required_address_fields``
    ticks appear as ``required:<field>``)."""
    out = Parsed()
    push_on = form.get("push_on", "paid")
    if push_on in ("paid", "created"):
        out.values["push_on"] = push_on
    else:
        out.errors["push_on"] = "paid or created"
    mode = form.get("fulfilment_mode")  # Shopify only: absent from other platforms' forms
    if mode in ("service", "order_webhooks"):
        out.values["fulfilment_mode"] = mode
    elif mode is not None:
        out.errors["fulfilment_mode"] = "service or order_webhooks"
    out.values["notify_customer"] = "notify_customer" in checked
    out.values["hold_high_risk"] = "hold_high_risk" in checked
    location = (form.get("location_id") or "").strip()
    if location and not _LOCATION.match(location):
        out.errors["location_id"] = "a location id such as gid://shopify/Location/123 or 123"
    else:
        out.values["location_id"] = location
    _int(form, "stock_interval_minutes", 1, 1440, out)
    if "risk_wait_minutes" in form:  # offered only where the platform assesses risk (Shopify)
        _int(form, "risk_wait_minutes", 1, 120, out)
    _int(form, "safety_buffer", 0, 100_000, out)
    buffers, bad = parse_sku_buffers(form.get("sku_buffers", ""))
    if bad:
        out.errors["sku_buffers"] = "write one 'SKU = number' per line; not understood: " + "; ".join(bad[:3])
    else:
        out.values["sku_buffers"] = buffers
    tags = [t.strip() for t in (form.get("hold_tags") or "").split(",") if t.strip()]
    out.values["hold_tags"] = list(dict.fromkeys(tags))
    extra = [name for name in OPTIONAL_ADDRESS_FIELDS if f"required:{name}" in checked]
    out.values["required_address_fields"] = ["address1", "city", "country_code", *extra]
    return out
