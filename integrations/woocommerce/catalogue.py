"""What we know of a store's catalogue: SKU → product id (and back), and which products ship.

Both are caches in Redis, per shop, filled from the store and corrected by ``product.updated``:
- SKU → ``{id, parent_id, manage_stock}``: ``GET /products?sku=a,b,c`` matches SKUs exactly
  and, given ``sku``, covers variations too (the only way to find a variation without its
  parent, woocommerce#31370). A stock write needs the id, and a variation its parent's id.
- catalogue id → shippable: an order line does not say whether its product is virtual or
  downloadable, so the ids are looked up once (``include=``, one call per parent for
  variations) and remembered for a day.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from integrations.woocommerce.client import WooClient

SKU_CHUNK = 40  # SKUs per lookup: keeps the URL well under common 8 KB limits
SHIPPABLE_TTL = 86400
SKU_TTL = 86400  # an entry older than this is looked up again (a SKU may move to another product)
FIELDS = "id,sku,parent_id,type,manage_stock,virtual,downloadable"


class Catalogue:
    """The caches for one shop; without Redis they live as long as this object."""

    def __init__(self, redis: Any, shop_id: int) -> None:
        self.redis = redis
        self.sku_key = f"relais:woo:sku:{shop_id}"
        self.id_key = f"relais:woo:skuid:{shop_id}"
        self.ship_key = f"relais:woo:ships:{shop_id}"
        self._memory: dict[str, dict[str, str]] = {self.sku_key: {}, self.id_key: {}, self.ship_key: {}}

    # --- small Redis-or-memory hash helpers --------------------------------------------------------
    def _hget(self, key: str, fields: list[str]) -> list[str | None]:
        if not fields:
            return []
        if self.redis is None:
            return [self._memory[key].get(f) for f in fields]
        return [v.decode() if isinstance(v, bytes) else v for v in self.redis.hmget(key, fields)]

    def _hset(self, key: str, mapping: Mapping[str, str], ttl: int | None = None) -> None:
        if not mapping:
            return
        if self.redis is None:
            self._memory[key].update(mapping)
            return
        self.redis.hset(key, mapping=dict(mapping))
        if ttl:
            self.redis.expire(key, ttl)

    def _hdel(self, key: str, field: str) -> None:
        if self.redis is None:
            self._memory[key].pop(field, None)
        else:
            self.redis.hdel(key, field)

    # --- SKU → product ------------------------------------------------------------------------------
    def products_for(self, client: WooClient, skus: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``sku → {id, parent_id, manage_stock}`` for the SKUs the store has; unknown ones are left out."""
        wanted = sorted({s for s in skus if s})
        found: dict[str, dict[str, Any]] = {}
        for sku, raw in zip(wanted, self._hget(self.sku_key, wanted), strict=True):
            entry = json.loads(raw) if raw else None
            if entry and time.time() - float(entry.get("at", 0)) < SKU_TTL:
                found[sku] = entry
        missing = [s for s in wanted if s not in found and "," not in s]
        for start in range(0, len(missing), SKU_CHUNK):
            chunk = missing[start : start + SKU_CHUNK]
            for product in client.pages("products", {"sku": ",".join(chunk), "_fields": FIELDS}):
                self.remember(product)
                if product.get("sku") in chunk:
                    found[product["sku"]] = self._entry(product)
        return found

    def sku_for_ids(self, ids: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(ids))
        return {i: s for i, s in zip(wanted, self._hget(self.id_key, wanted), strict=True) if s}

    def forget(self, sku: str) -> None:
        self._hdel(self.sku_key, sku)

    def remember(self, product: Mapping[str, Any]) -> None:
        """Record a product or variation as the store showed it (a lookup or ``product.updated``)."""
        pid = str(product.get("id") or "")
        if not pid:
            return
        sku = str(product.get("sku") or "").strip()
        if sku:
            self._hset(self.sku_key, {sku: json.dumps(self._entry(product))})
            self._hset(self.id_key, {pid: sku})
        if "virtual" in product or "downloadable" in product:
            ships = not (product.get("virtual") or product.get("downloadable"))
            self._hset(self.ship_key, {pid: "1" if ships else "0"}, SHIPPABLE_TTL)

    @staticmethod
    def _entry(product: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": int(product["id"]),
            "parent_id": int(product.get("parent_id") or 0),
            "manage_stock": product.get("manage_stock"),
            "at": time.time(),
        }

    # --- which lines ship ---------------------------------------------------------------------------
    def non_shippable(self, client: WooClient, pairs: Iterable[tuple[int, int]]) -> set[str]:
        """Catalogue ids (variation, else product) of the virtual or downloadable ones among ``pairs``."""
        pairs = [(p, v) for p, v in set(pairs) if p or v]
        ids = [str(v or p) for p, v in pairs]
        known = dict(zip(ids, self._hget(self.ship_key, ids), strict=True))
        simple = sorted({str(p) for p, v in pairs if not v and known[str(p)] is None})
        if simple:
            for product in client.pages("products", {"include": ",".join(simple), "_fields": FIELDS}):
                self.remember(product)
        parents: dict[int, list[str]] = {}
        for p, v in pairs:
            if v and known[str(v)] is None:
                parents.setdefault(p, []).append(str(v))
        for parent, variations in parents.items():
            params = {"include": ",".join(sorted(variations)), "_fields": FIELDS}
            for variation in client.pages(f"products/{parent}/variations", params):
                self.remember({**variation, "parent_id": variation.get("parent_id") or parent})
        flags = dict(zip(ids, self._hget(self.ship_key, ids), strict=True))
        # Unknown to the store (deleted product): assume it ships, the 3PL will say otherwise.
        return {i for i, flag in flags.items() if flag == "0"}
