"""Where stock lives, as the merchant chooses it: the shop's locations and the provider's centres.

Both sides are listed live (the settings page and ``shop locations``) so the merchant picks from
names rather than typing ids; the stock sync maps provider centres onto shop locations with the
shop's ``stock_locations`` setting. Plain values, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

#: WooCommerce keeps one stock figure per product: its one implicit location has this id (the
#: value ``shop add`` has always stored as ``location_id`` for a WooCommerce store).
SINGLE_STORE_LOCATION = "store"


@dataclass(frozen=True)
class ShopLocation:
    """One active location of a shop (Shopify: a ``Location`` GID)."""

    id: str
    name: str
    fulfils_online_orders: bool = True
    fulfilment_service: bool = False  # a location created by a fulfilment service app


@dataclass(frozen=True)
class FulfilmentCentre:
    """One fulfilment centre of the provider account; ``id`` is what its inventory levels name."""

    id: str
    name: str


@dataclass(frozen=True)
class RiskAssessment:
    """A platform's fraud verdict on an order, summed up for the hold rule.

    ``level`` is the worst of the assessments (``high``, ``medium``, ``low``, ``none``) or
    ``pending`` while an assessment is still being made or none has arrived yet.
    """

    level: str
    facts: tuple[str, ...] = ()

    @property
    def high(self) -> bool:
        return self.level == "high"

    @property
    def pending(self) -> bool:
        return self.level == "pending"


def describe(locations: list[ShopLocation]) -> str:
    """``Name (id), Name (id)`` for a message that names every location."""
    return ", ".join(f"{loc.name} ({loc.id})" for loc in locations) or "none"
