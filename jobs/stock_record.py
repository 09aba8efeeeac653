"""What one stock sync run read, wrote and skipped: the run row's record, its size bounded.

A sync streams the provider's levels a batch at a time; the record adds each batch up as it
goes. Every count is exact (levels read, targets, SKUs written, skipped per reason, unchanged,
write calls), while the per-SKU detail (the provider's figures, targets, what was written, what
was skipped and why) keeps the first ``DETAIL`` entries of each kind: a first sync of a
100,000-SKU catalogue writes every SKU, and a record holding all of them would hold the whole
catalogue in memory and in one JSON value. Skipped SKUs are the detail that matters most (each
one is the merchant's to look at), so the count of each reason is always kept in full.

Thread-safe: the planning thread and the writing thread (``jobs.stock_write``) both add to it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from integrations.model import InventoryLevel

DETAIL = 2000  # per-SKU entries kept per kind (provider figures, targets, written, skipped)


class RunRecord:
    """Counts in full, per-SKU detail up to ``limit`` entries per kind."""

    def __init__(self, limit: int = DETAIL) -> None:
        self._lock = threading.Lock()
        self.limit = limit
        self.levels = 0
        self.provider: dict[str, dict[str, list[int]]] = {}
        self._provider_kept = 0
        self.targets: dict[str, dict[str, int]] = {}
        self.target_count = 0
        self._targets_kept = 0
        self.written: dict[str, dict[str, int]] = {}
        self.written_count = 0
        self.skipped: dict[str, str] = {}
        self.skipped_count = 0
        self.reasons: Counter[str] = Counter()
        self.unchanged = 0
        self.calls = 0

    def read(self, levels: Iterable[InventoryLevel]) -> None:
        with self._lock:
            for level in levels:
                self.levels += 1
                if self._provider_kept < self.limit:
                    self._provider_kept += 1
                    self.provider.setdefault(level.location, {})[level.sku] = [level.on_hand, level.fulfillable]

    def planned(self, targets: Mapping[str, Mapping[str, int]], unchanged: int) -> None:
        with self._lock:
            self.unchanged += unchanged
            for location, per_sku in targets.items():
                self.target_count += len(per_sku)
                kept = self.targets.setdefault(location, {})
                for sku, quantity in per_sku.items():
                    if self._targets_kept >= self.limit:
                        break
                    self._targets_kept += 1
                    kept[sku] = quantity

    def wrote(self, location: str, written: Mapping[str, int], calls: int) -> None:
        with self._lock:
            self.calls += calls
            self.written_count += len(written)
            kept = self.written.setdefault(location, {})
            room = self.limit - sum(len(v) for v in self.written.values())
            for sku, quantity in list(written.items())[: max(0, room)]:
                kept[sku] = quantity

    def skip(self, skipped: Mapping[str, str]) -> None:
        """SKUs left alone with why (a SKU skipped twice counts once, with its last reason)."""
        with self._lock:
            for sku, reason in skipped.items():
                if sku in self.skipped:
                    self.reasons[self.skipped[sku]] -= 1
                else:
                    self.skipped_count += 1
                    if len(self.skipped) >= self.limit:
                        self.reasons[reason] += 1
                        continue
                self.skipped[sku] = reason
                self.reasons[reason] += 1

    def as_read(self, reserved: Mapping[str, int]) -> dict[str, Any]:
        """The run row's ``read`` value: the provider's figures, reserved units, targets, counts."""
        with self._lock:
            return {
                "provider": self.provider,
                "reserved": dict(reserved),
                "targets": self.targets,
                "counts": {
                    "levels": self.levels,
                    "targets": self.target_count,
                    "written": self.written_count,
                    "skipped": self.skipped_count,
                    "unchanged": self.unchanged,
                    "skipped_by_reason": {reason: n for reason, n in self.reasons.items() if n > 0},
                    "detail_limit": self.limit,
                },
            }
