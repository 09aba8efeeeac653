"""ShipBob (Developer API, dated version 2026-07) as a Relais fulfilment provider.

Every request goes through ``_call``: one shared rate limiter (150/min per account, sliding
window, kept in Redis for all workers), one timeout, and one place where ShipBob's answers become
named errors [docs: developer.shipbob.com/2026-07/errors, /rate-limit]: 429 and 5xx and network
failures are retryable (429 also blocks the account's limiter for ``x-retry-after`` seconds), 401
and 403 are the merchant's credentials, 400 and 422 carry a map of field → messages.
The JSON mapping itself lives in ``shipbob_payloads`` (pure functions).

Options (per shop): ``token`` (a Personal Access Token), ``channel_id`` (a channel with write
scopes), ``webhook_secret`` (``whsec_…``, given when the webhook subscription is created);
optional ``api_version``, and ``rate_limit`` / ``rate_window`` / ``rate_max_wait`` for tests.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integrations.errors import (
    AuthError,
    ConfigError,
    InvalidRequestError,
    NotCancellableError,
    NotEditableError,
    NotFoundError,
    RetryableError,
    WebhookRejected,
)
from integrations.fulfilment import shipbob_payloads as payloads
from integrations.fulfilment.base import FulfilmentProvider, ProviderContext
from integrations.fulfilment.ratelimit import SlidingWindowLimiter
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
from store import metrics

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.shipbob.com"
DEFAULT_VERSION = "2026-07"
MAX_PAGES = 1000
# batchUpdateTrackingUpload error codes that a repeat cannot fix (the others are server-side).
PERMANENT_ACK_ERRORS = {"INVALID_PARAMETER", "VALIDATION_ERROR", "NOT_FOUND"}


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever the case of the stored keys."""
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ShipBobProvider(FulfilmentProvider):
    """Orders keyed by ``reference_id``, tracking by webhook and by the ``IsTrackingUploaded`` flag."""

    name = "shipbob"
    acknowledges_tracking = True
    #: the address is changed per shipment (``:updateAddress``); line edits need ShipBob's own
    #: inventory and line ids (``:updateLineItems``, whole list only), so lines are re-created
    editable = frozenset({"address"})
    #: orders per page when polling (ShipBob's maximum; the default would be 50)
    poll_limit = 250

    def __init__(self, options: Mapping[str, str], context: ProviderContext):
        super().__init__(options, context)
        missing = [key for key in self.required_options() if not self.options.get(key)]
        if missing:
            raise ConfigError(f"shipbob needs provider option(s): {', '.join(missing)}")
        root = (getattr(context.settings, "shipbob_api_url", "") or DEFAULT_API_URL).rstrip("/")
        self.base_url = f"{root}/{self.options.get('api_version') or DEFAULT_VERSION}"
        self.limiter: SlidingWindowLimiter | None = None
        if context.redis is not None:
            account = hashlib.sha256(f"{root}\n{self.options['token']}".encode()).hexdigest()[:20]
            self.limiter = SlidingWindowLimiter(
                context.redis,
                f"shipbob:{account}",
                limit=int(self.options.get("rate_limit") or 150),
                window=float(self.options.get("rate_window") or 60),
                max_wait=float(self.options.get("rate_max_wait") or 30),
            )

    @classmethod
    def required_options(cls) -> tuple[str, ...]:
        return ("token", "channel_id", "webhook_secret")

    # -- HTTP ------------------------------------------------------------------------------

    def _url(self, path_or_link: str) -> str:
        """A path under the version, or a paging link: only its path and query are kept, so the
        token is never sent to a host other than the configured one."""
        if path_or_link.startswith("/") and not path_or_link.startswith(urlsplit(self.base_url).path + "/"):
            return self.base_url + path_or_link
        parts = urlsplit(path_or_link)
        root = urlsplit(self.base_url)
        return f"{root.scheme}://{root.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: object = None) -> Any:
        """One request; returns the decoded JSON or raises a named error."""
        if self.limiter is not None:
            self.limiter.acquire()
        headers = {
            "Authorization": f"Bearer {self.options['token']}",
            "shipbob_channel_id": str(self.options["channel_id"]),
            "Accept": "application/json",
        }
        what = f"ShipBob {method} {urlsplit(path).path}"
        try:
            response = self.context.http.request(
                method,
                self._url(path),
                params=params,
                json=body,
                headers=headers,
                timeout=self.context.settings.provider_timeout,
            )
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise RetryableError(f"{what}: {type(exc).__name__}") from exc
        return self._decode(what, response)

    def _decode(self, what: str, response: requests.Response) -> Any:
        status = response.status_code
        if status < 300:
            return response.json() if response.content else None
        retry_after = _seconds(response.headers.get("x-retry-after"))
        if status == 429:
            if self.limiter is not None:
                self.limiter.block(retry_after or 1.0)
            metrics.count_provider_429(self.context.redis, self.name)
            raise RetryableError(f"{what}: rate limited", retry_after=retry_after, status=status)
        if status >= 500 or status == 408:
            raise RetryableError(f"{what}: answered {status}", retry_after=retry_after, status=status)
        if status in (401, 403):
            raise AuthError(f"{what}: ShipBob refused the token or channel ({status}); check the PAT and channel_id")
        try:
            details: object = response.json()
        except ValueError:
            details = response.text
        if status == 404:
            raise NotFoundError(f"{what}: not found")
        raise InvalidRequestError(f"{what}: {payloads.error_text(details)}", status=status, details=details)

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Items of a link-paged list (``{items, first, next, prev, last}``), following ``next``."""
        link: str | None = path
        query: dict[str, Any] | None = params
        for _ in range(MAX_PAGES):
            data = self._call("GET", link, params=query) or {}
            yield from data.get("items") or []
            link, query = data.get("next"), None
            if not link:
                return
        log.warning("ShipBob %s: stopped after %d pages", path, MAX_PAGES)

    # -- orders ----------------------------------------------------------------------------

    def create_order(self, order: Order, reference: str) -> ProviderOrderRef:
        """Create the order; a repeat (422 duplicate reference) returns the existing one."""
        try:
            data = self._call("POST", "/order", body=payloads.order_body(order, reference))
        except InvalidRequestError as exc:
            if exc.status != 422 or not payloads.is_duplicate(exc.details):
                raise
            found = self.find_order(reference)
            if found is None:  # ShipBob says it exists but does not list it yet
                raise RetryableError(f"ShipBob reports {reference} as a duplicate but does not list it", 5) from exc
            return ProviderOrderRef(reference, found.provider_order_id, duplicate=True)
        return ProviderOrderRef(reference, str(data["id"]))

    def find_order(self, reference: str) -> ProviderOrderRef | None:
        orders = self._call("GET", "/order", params={"ReferenceIds": reference}) or []
        match = next((o for o in orders if o.get("reference_id") == reference), None)
        return ProviderOrderRef(reference, str(match["id"])) if match else None

    def cancel_order(self, ref: ProviderOrderRef) -> CancelResult:
        """Cancel every shipment still cancellable; ``NotCancellableError`` when ShipBob refuses (422)."""
        try:
            data = self._call("POST", f"/order/{ref.provider_order_id}:cancel")
        except InvalidRequestError as exc:
            if exc.status == 422:
                raise NotCancellableError(str(exc)) from exc
            raise
        return payloads.cancel_result(data or {})

    def update_order(self, ref: ProviderOrderRef, order: Order, changes: OrderChanges) -> None:
        """Set the new address on every open shipment of the order. Refused (``NotEditableError``)
        when a shipment has left or ShipBob answers ``is_success: false``; when edits stop being
        allowed is not documented, so a refusal is taken as "too late" with ShipBob's reason."""
        if changes.kinds - self.editable:
            raise NotEditableError(f"ShipBob cannot change {', '.join(sorted(changes.kinds - self.editable))} in place")
        data = self._call("GET", f"/order/{ref.provider_order_id}") or {}
        shipments = [s for s in data.get("shipments") or [] if s.get("status") != "Cancelled"]
        if not shipments:
            raise NotEditableError(f"ShipBob order {ref.provider_order_id} has no open shipment")
        gone = [str(s.get("id")) for s in shipments if payloads.shipment_status(s) in ("shipped", "delivered")]
        if gone:
            raise NotEditableError(f"ShipBob already shipped shipment {', '.join(gone)}")
        body = payloads.address_update_body(order)
        for shipment in shipments:
            try:
                answer = self._call("PUT", f"/shipment/{shipment['id']}:updateAddress", body=body)
            except InvalidRequestError as exc:
                raise NotEditableError(f"ShipBob refused the address of shipment {shipment['id']}: {exc}") from exc
            refusal = payloads.edit_refusal(answer)
            if refusal:
                raise NotEditableError(f"ShipBob refused the address of shipment {shipment['id']}: {refusal}")

    # -- stock -----------------------------------------------------------------------------

    def inventory(self) -> Iterator[InventoryLevel]:
        """Per SKU and fulfilment centre: products → their variants' inventory ids → levels by FC.

        ShipBob keys quantities by its own ``inventory_id``, not by SKU [docs: /guides/inventory];
        ``GET /inventory-level/locations`` gives them per fulfilment centre. Digital and inactive
        variants are skipped; bundles (computed from components) are not reported. Yielded a page
        of products at a time (their levels read right after), so a large catalogue is streamed,
        never held whole; an item's centres come one after the other.
        """
        products = self._pages("/product", {"PageSize": 250})
        while page := list(itertools.islice(products, 250)):
            yield from self._levels_of(page)

    def _levels_of(self, products: list[dict[str, Any]]) -> Iterator[InventoryLevel]:
        sku_of: dict[int, str] = {}
        for product in products:
            for variant in product.get("variants") or []:
                inventory_id = (variant.get("inventory") or {}).get("inventory_id")
                if variant.get("is_digital") or variant.get("status") == "Inactive":
                    continue
                if inventory_id and variant.get("sku"):
                    sku_of[int(inventory_id)] = variant["sku"]
        for ids in _chunks(sorted(sku_of), 100):
            query = {"InventoryIds": ",".join(map(str, ids)), "PageSize": 100}
            for item in self._pages("/inventory-level/locations", query):
                sku = sku_of.get(int(item.get("inventory_id") or 0))
                for place in item.get("locations") or [] if sku else []:
                    yield InventoryLevel(
                        sku=sku,
                        location=str(place.get("location_id")),
                        on_hand=int(place.get("on_hand_quantity") or 0),
                        fulfillable=int(place.get("fulfillable_quantity") or 0),
                    )

    def fulfilment_centres(self) -> list[FulfilmentCentre]:
        """``GET /location``: ShipBob's physical locations (a bare list of ``{id, name,
        abbreviation, is_active, access_granted, …}``) [docs: developer.shipbob.com/2026-01/api/
        locations/get-locations]. Its ``id`` is the ``location_id`` of ``/inventory-level/locations``.
        Only active locations this account may use are listed (``AccessGranted=true``)."""
        found = self._call("GET", "/location", params={"AccessGranted": "true"}) or []
        return [
            FulfilmentCentre(
                id=str(item["id"]),
                name=str(item.get("name") or item.get("abbreviation") or item["id"]),
            )
            for item in found
            if isinstance(item, dict) and item.get("id") is not None and item.get("is_active", True)
        ]

    # -- shipments -------------------------------------------------------------------------

    def shipments(self, ref: ProviderOrderRef) -> list[Shipment]:
        """The order's parcels now: shipments with tracking, or cancelled / on hold / in exception."""
        data = self._call("GET", f"/order/{ref.provider_order_id}") or {}
        found = [
            payloads.shipment_from(s, reference=data.get("reference_id") or ref.reference, order_id=data.get("id"))
            for s in data.get("shipments") or []
        ]
        return [s for s in found if s.status != "pending"]

    def unacknowledged_shipments(self) -> list[Shipment]:
        """Shipped parcels whose tracking we have not acknowledged (the polling fallback ShipBob
        suggests every 15–30 minutes: ``HasTracking=true&IsTrackingUploaded=false``)."""
        found: list[Shipment] = []
        for page in range(1, MAX_PAGES + 1):
            params = {"HasTracking": "true", "IsTrackingUploaded": "false", "Limit": self.poll_limit, "Page": page}
            orders = self._call("GET", "/order", params=params) or []
            for order in orders:
                for data in order.get("shipments") or []:
                    shipment = payloads.shipment_from(
                        data, reference=order.get("reference_id") or "", order_id=order.get("id")
                    )
                    if (
                        shipment.tracking_number
                        and not data.get("is_tracking_uploaded")
                        and shipment.status != "cancelled"
                    ):
                        found.append(shipment)
            if len(orders) < self.poll_limit:
                break
        return found

    def ack_shipments(self, provider_shipment_ids: list[str]) -> None:
        """Set ``is_tracking_uploaded`` on these shipments. Idempotent; per-shipment failures are
        raised after every batch was sent (retryable unless ShipBob's code says the id is wrong)."""
        failures: list[tuple[str, str, str]] = []
        for ids in _chunks(list(provider_shipment_ids), 100):
            body = {"is_tracking_uploaded": True, "shipment_ids": [int(i) for i in ids]}
            data = self._call("POST", "/shipment:batchUpdateTrackingUpload", body=body) or {}
            for result in data.get("results") or []:  # camelCase here, unlike the rest of the API
                if not result.get("isSuccess"):
                    error = result.get("error") or {}
                    failures.append(
                        (str(result.get("shipmentId")), error.get("code") or "", error.get("message") or "")
                    )
        if not failures:
            return
        text = "; ".join(f"shipment {sid}: {code} {message}".strip() for sid, code, message in failures)
        if any(code not in PERMANENT_ACK_ERRORS for _, code, _ in failures):
            raise RetryableError(f"ShipBob could not mark tracking uploaded: {text}")
        raise InvalidRequestError(f"ShipBob refused to mark tracking uploaded: {text}", details=failures)

    # -- webhooks --------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Standard Webhooks signature over ``{webhook-id}.{webhook-timestamp}.{body}``; the
        timestamp must be within 5 minutes (the package's tolerance), which stops replays."""
        try:
            hook = Webhook(self.options["webhook_secret"])
        except Exception as exc:
            raise ConfigError("shipbob webhook_secret is not a whsec_ secret") from exc
        try:
            hook.verify(body, {key.lower(): value for key, value in headers.items()}, json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:
            raise WebhookRejected(f"ShipBob signature check failed: {exc}", 401) from exc

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("the ShipBob webhook body is not an object")
        return payloads.parse_event(_header(headers, "webhook-id"), self.webhook_topic(headers, body), payload)

    @staticmethod
    def webhook_delivery_id(headers: Mapping[str, str]) -> str:
        """``webhook-id``: stable across ShipBob's retries of one delivery, so it is the dedup key."""
        return _header(headers, "webhook-id")

    @classmethod
    def webhook_reference(cls, headers: Mapping[str, str], body: bytes) -> str:
        try:
            payload = json.loads(body)
        except ValueError:
            return ""
        return str(payload.get("reference_id") or "") if isinstance(payload, dict) else ""

    @classmethod
    def webhook_topic(cls, headers: Mapping[str, str], body: bytes) -> str:
        return _header(headers, "x-webhook-topic")
