"""The platform-neutral order model and the provider-side records, as plain values.

Both platforms normalise into ``Order``; every provider builds its request from it. Ids stay
strings end to end: Shopify order ids exceed 2**53 and must never pass through a float.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Address:
    name: str
    address1: str
    city: str
    country_code: str
    address2: str = ""
    company: str = ""
    province_code: str = ""
    zip: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Line:
    platform_line_id: str
    sku: str
    quantity: int
    requires_shipping: bool
    name: str = ""


@dataclass(frozen=True)
class Contact:
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Order:
    """One order as a platform reported it at ``updated_at``."""

    platform_order_id: str
    name: str
    paid: bool
    cancelled: bool
    updated_at: datetime
    lines: tuple[Line, ...]
    ship_to: Address | None
    shipping_method: str = ""
    contact: Contact = field(default_factory=Contact)
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    high_risk: bool = False  # the platform flags it as a likely fraud (shop rule hold_high_risk)

    @property
    def shippable_lines(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.requires_shipping and line.quantity > 0)


@dataclass(frozen=True)
class ProviderOrderRef:
    """What a provider answered to a create: its own id for the order we keyed by ``reference``."""

    reference: str
    provider_order_id: str
    duplicate: bool = False  # True when the provider already had it (a repeat of a create)


@dataclass(frozen=True)
class ShipmentCancel:
    provider_shipment_id: str
    cancelled: bool
    reason: str = ""


@dataclass(frozen=True)
class CancelResult:
    """Outcome of a cancel: ``cancelled``, ``too_late`` or ``partial``, with each shipment's result."""

    outcome: str
    shipments: tuple[ShipmentCancel, ...] = ()
    message: str = ""


@dataclass(frozen=True)
class ShipmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Shipment:
    """A parcel as the provider reports it (webhook or polling)."""

    provider_shipment_id: str
    reference: str
    provider_order_id: str = ""
    status: str = "shipped"  # shipped | in_transit | delivered | cancelled | on_hold | exception
    carrier: str = ""
    service: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    lines: tuple[ShipmentLine, ...] = ()
    event_time: datetime | None = None
    message: str = ""


@dataclass(frozen=True)
class InventoryLevel:
    sku: str
    location: str
    on_hand: int
    fulfillable: int


@dataclass(frozen=True)
class ProviderEvent:
    """One verified provider webhook, normalised: its dedup id, its kind and the shipment it is about."""

    delivery_id: str
    kind: str
    event_time: datetime | None
    shipment: Shipment | None = None


@dataclass(frozen=True)
class LineChange:
    """One shippable line whose quantity differs from what the provider holds (0: added/removed)."""

    platform_line_id: str
    sku: str
    before: int
    after: int


@dataclass(frozen=True)
class OrderChanges:
    """How an order now differs from what the provider holds: the new address (None when the
    address is unchanged) and the lines added, removed or re-quantified."""

    address: Address | None = None
    lines: tuple[LineChange, ...] = ()

    @property
    def empty(self) -> bool:
        return self.address is None and not self.lines

    @property
    def kinds(self) -> frozenset[str]:
        """``address`` and/or ``lines``: what a provider must be able to edit to apply these."""
        return frozenset(k for k, v in (("address", self.address), ("lines", self.lines)) if v)
