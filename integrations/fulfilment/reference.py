"""The deterministic order reference sent to providers as their idempotency key.

``{shop id}-{platform order id}``, plus ``-g{n}`` from the second generation on (an order
cancelled and re-created at the provider needs a fresh key). A provider webhook carries it back,
which is how an incoming provider event finds its shop before its signature is checked.
"""

from __future__ import annotations

import re

_REF = re.compile(r"^(?P<shop>\d+)-(?P<order>[0-9A-Za-z_]+?)(?:-g(?P<gen>\d+))?$")


def make_reference(shop_id: int, platform_order_id: str, generation: int = 1) -> str:
    base = f"{shop_id}-{platform_order_id}"
    return base if generation <= 1 else f"{base}-g{generation}"


def parse_reference(reference: str) -> tuple[int, str, int] | None:
    """``(shop id, platform order id, generation)`` for one of our references, else None."""
    m = _REF.match(reference or "")
    if not m:
        return None
    return int(m["shop"]), m["order"], int(m["gen"] or 1)
