"""The interface every fulfilment provider implements, and what it may raise.

A provider adapter is built per shop from that shop's (decrypted) provider settings and a
``requests.Session``; jobs speak only to this interface, chosen by the registry in
``integrations.fulfilment``. Contract of every method: it returns a value or raises one of
``integrations.errors`` (``RetryableError`` with ``retry_after`` for 429/5xx/timeouts,
``InvalidRequestError`` with the provider's message, ``AuthError``, ``NotCancellableError``,
``NotEditableError``).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from integrations.errors import NotEditableError
from integrations.locations import FulfilmentCentre
from integrations.model import (
    CancelResult,
    InventoryLevel,
    Order,
    OrderChanges,
    ProviderEvent,
    ProviderOrderRef,
    Shipment,
)

#: Shipment webhook topics (ShipBob's 2026-07 names, which the sandbox mirrors) → event kind.
SHIPMENT_TOPIC_KINDS = {
    "order.shipped": "shipped",
    "order.shipment.tracking.updated": "tracking_updated",
    "order.shipment.delivered": "delivered",
    "order.shipment.cancelled": "cancelled",
    "order.shipment.on_hold": "on_hold",
    "order.shipment.exception": "exception",
}

#: Event kind → the shipment status it reports.
KIND_STATUS = {
    "shipped": "shipped",
    "tracking_updated": "in_transit",
    "delivered": "delivered",
    "cancelled": "cancelled",
    "on_hold": "on_hold",
    "exception": "exception",
}


#: Where a provider delivers its webhooks. Deliveries naming our order reference are routed by it;
#: the per-shop form (``…/<shop's webhook_token>``) routes those that name none (account-wide events).
WEBHOOK_PATH = "/webhooks/fulfilment/{provider}"


def webhook_url(public_url: str, provider: str, webhook_token: str = "") -> str:  # nosec B107 # "" means no token
    """The address to give a provider account: the shop's own when its token is known.

    Always prefer the per-shop URL: it is the only one that accepts deliveries without our
    reference, and it names the shop by an unguessable token, never by its (enumerable) id.
    """
    url = public_url.rstrip("/") + WEBHOOK_PATH.format(provider=provider)
    return f"{url}/{webhook_token}" if webhook_token else url


@dataclass(frozen=True)
class ProviderContext:
    """What an adapter needs besides its shop's settings: shared HTTP, process settings, Redis."""

    http: requests.Session
    settings: Any  # config.Settings; typed loosely to keep integrations free of config imports
    redis: Any = None  # a redis.Redis, for limiters shared across worker processes


class FulfilmentProvider(abc.ABC):
    """A fulfilment centre (3PL) as Relais uses it."""

    #: name stored on the shop row and used in webhook URLs
    name: str = ""
    #: provider keeps a "tracking uploaded" flag that ``ack_shipments`` sets
    acknowledges_tracking: bool = False
    #: what ``update_order`` can change in place ("address", "lines"); the rest is re-created
    editable: frozenset[str] = frozenset()

    def __init__(self, options: Mapping[str, str], context: ProviderContext):
        self.options = dict(options)
        self.context = context

    @classmethod
    def required_options(cls) -> tuple[str, ...]:
        """Names of ``--provider-option`` keys this provider cannot work without."""
        return ()

    @abc.abstractmethod
    def create_order(self, order: Order, reference: str) -> ProviderOrderRef:
        """Create the order keyed by ``reference``; a repeat returns the existing one (duplicate=True)."""

    @abc.abstractmethod
    def find_order(self, reference: str) -> ProviderOrderRef | None:
        """The provider's order for ``reference``, or None."""

    @abc.abstractmethod
    def cancel_order(self, ref: ProviderOrderRef) -> CancelResult:
        """Ask the provider to cancel; the result says per shipment what happened."""

    def update_order(self, ref: ProviderOrderRef, order: Order, changes: OrderChanges) -> None:
        """Apply ``changes`` (of the kinds in ``editable``) to the provider's order, so it holds
        ``order``'s address and shippable lines. Setting a value is idempotent, so a repeat is
        harmless. Raises ``NotEditableError`` when the provider refuses (picked, shipped)."""
        raise NotEditableError(f"{self.name} cannot change an order after it is created")

    @abc.abstractmethod
    def inventory(self) -> Iterable[InventoryLevel]:
        """Every SKU's stock, per fulfilment centre, best yielded as it is read (the stock sync
        streams it a batch at a time, so a large warehouse is never held whole). A SKU's levels
        at its several centres should come one after the other: the sync sums them per shop
        location, and plans a SKU listed apart from its first levels only (too low, never too high)."""

    def fulfilment_centres(self) -> list[FulfilmentCentre]:
        """The account's active fulfilment centres, with the ids its ``inventory`` levels name,
        for the merchant to map onto shop locations. Raises ``RetryableError``, ``AuthError``."""
        raise NotImplementedError(f"{self.name} does not list its fulfilment centres")

    @abc.abstractmethod
    def shipments(self, ref: ProviderOrderRef) -> list[Shipment]:
        """The order's parcels as the provider knows them now (polling path)."""

    def unacknowledged_shipments(self) -> list[Shipment]:
        """Shipments with tracking not yet written to the shop (providers keeping such a flag)."""
        return []

    def ack_shipments(self, provider_shipment_ids: list[str]) -> None:  # noqa: B027 - optional
        """Tell the provider the tracking of these shipments reached the shop (no-op by default)."""

    @abc.abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``WebhookRejected(401)`` unless the raw body is signed by this provider account."""

    @abc.abstractmethod
    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """The verified webhook as one normalised event."""

    @staticmethod
    def webhook_delivery_id(headers: Mapping[str, str]) -> str:
        """The dedup key of a delivery, read from headers only (before any parsing)."""
        return headers.get("webhook-id", "")

    @classmethod
    def webhook_reference(cls, headers: Mapping[str, str], body: bytes) -> str:
        """Our order reference named in an (unverified) webhook body, used only to find whose
        secret to verify it with; "" when there is none. Never trusted before ``verify_webhook``."""
        return ""

    @classmethod
    def webhook_topic(cls, headers: Mapping[str, str], body: bytes) -> str:
        """The delivery's topic, for the inbox row (headers or body, unverified)."""
        return headers.get("x-webhook-topic", "")
