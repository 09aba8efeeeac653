"""Our own writes, remembered so that their webhook echoes are recognised and dropped.

Every write to an order or product (tracking note and meta, status ``completed``, stock) fires
``order.updated`` / ``product.updated`` back at us (reference §4, §11.8). After each write we
record the resource's ``date_modified_gmt`` and status as the store answered them; a delivery
carrying exactly that state is our echo. A merchant's change in the same second would carry
another status or a later ``date_modified_gmt``, so it is never mistaken for one. An echo that
outruns the record (a store delivering synchronously) is still harmless: the pipeline decides
from state, and our write does not change what it decides.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

TTL = 2 * 86400  # WP-Cron delays deliveries by hours at worst (woocommerce#11991)


def _key(shop_id: int, resource: str, resource_id: object) -> str:
    return f"relais:woo:echo:{shop_id}:{resource}:{resource_id}"


def fingerprint(resource: str, payload: Mapping[str, Any]) -> str:
    """What identifies a state: when it was saved and what we care about in it."""
    what = payload.get("status") if resource == "order" else payload.get("stock_quantity")
    return f"{payload.get('date_modified_gmt') or ''}|{what}"


def remember(redis: Any, shop_id: int, resource: str, payload: Mapping[str, Any]) -> None:
    """Record the state the store answered to one of our writes."""
    if redis is None or not payload.get("id") or not payload.get("date_modified_gmt"):
        return
    key = _key(shop_id, resource, payload["id"])
    redis.sadd(key, fingerprint(resource, payload))
    redis.expire(key, TTL)


def is_echo(redis: Any, shop_id: int, resource: str, payload: Mapping[str, Any]) -> bool:
    """True when ``payload`` is exactly a state one of our writes produced (and counted as such)."""
    if redis is None or not payload.get("id") or not payload.get("date_modified_gmt"):
        return False
    echo = bool(redis.sismember(_key(shop_id, resource, payload["id"]), fingerprint(resource, payload)))
    if echo:
        _count(redis, shop_id)
    return echo


def _count_key(shop_id: int, hour: int) -> str:
    # Under relais:woo:echo:{shop}: so that redacting the shop deletes the counts with the rest.
    return f"relais:woo:echo:{shop_id}:ignored:{hour}"


def _count(redis: Any, shop_id: int) -> None:
    """Echoes are answered without being stored, so the settings page's Health counts them here:
    one counter per hour, kept a day."""
    key = _count_key(shop_id, int(time.time()) // 3600)
    redis.incr(key)
    redis.expire(key, 25 * 3600)


def ignored_last_day(redis: Any, shop_id: int) -> int:
    """How many deliveries of ``shop_id`` were dropped as our own echoes in the last 24 hours."""
    if redis is None:
        return 0
    hour = int(time.time()) // 3600
    values = redis.mget([_count_key(shop_id, hour - n) for n in range(24)])
    return sum(int(v) for v in values if v)
