"""Partial refunds of a WooCommerce order, as quantities still to ship.

An order's payload keeps each line's original ``quantity`` after a refund and lists only
``refunds[{id, reason, total}]`` (reference/woocommerce.md §2, §8); which units were refunded is
in the refunds themselves, ``GET /wc/v3/orders/<id>/refunds``, each with ``line_items`` whose
``quantity`` is negative. A refunded unit is not shipped: ``net_of_refunds`` lowers the lines
before the order is normalised, so the pipeline's diff against what the provider holds sees a
line removed or re-quantified, as on Shopify (whose ``current_quantity`` already nets them out).

A refund line names the order line it refunds by the hidden meta ``_refunded_item_id`` when the
store exposes it; otherwise by its SKU, else its product/variation, from the order's lines in order.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

JSON = dict[str, Any]


def _refunded_item_id(item: Mapping[str, Any]) -> int | None:
    for meta in item.get("meta_data") or []:
        if isinstance(meta, Mapping) and meta.get("key") == "_refunded_item_id":
            try:
                return int(meta.get("value"))
            except (TypeError, ValueError):
                return None
    return None


def _same_item(line: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    """Whether a refund line is about this order line: same SKU when the refund names one, else
    the same product and variation."""
    sku = str(item.get("sku") or "").strip()
    if sku:
        return str(line.get("sku") or "").strip() == sku
    return (line.get("product_id") or 0, line.get("variation_id") or 0) == (
        item.get("product_id") or 0,
        item.get("variation_id") or 0,
    )


def net_of_refunds(payload: Mapping[str, Any], refunds: Sequence[Mapping[str, Any]]) -> JSON:
    """A copy of ``payload`` whose line quantities exclude the refunded units (never below 0)."""
    order = copy.deepcopy(dict(payload))
    lines = [line for line in order.get("line_items") or [] if isinstance(line, dict)]
    for refund in refunds:
        for item in refund.get("line_items") or [] if isinstance(refund, Mapping) else []:
            units = abs(int(item.get("quantity") or 0))
            target_id = _refunded_item_id(item)
            for line in lines:
                if units == 0:
                    break
                matches = line.get("id") == target_id if target_id is not None else _same_item(line, item)
                if matches and int(line.get("quantity") or 0) > 0:
                    taken = min(units, int(line["quantity"]))
                    line["quantity"] = int(line["quantity"]) - taken
                    units -= taken
    return order


def has_refunds(payload: Mapping[str, Any]) -> bool:
    return bool(payload.get("refunds"))
