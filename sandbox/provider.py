"""The built-in sandbox provider: Relais' adapter for the simulated warehouse of ``sandbox.api``.

It speaks HTTP to the sandbox API like any adapter to its 3PL, so everything Relais does with a
real provider (timeouts, 429 with Retry-After, duplicates, partial cancels, signed webhooks) is
exercised on a fresh machine. Options: ``token`` (default "sandbox"; each token is an account
with its own orders and stock) and ``url`` (default ``SANDBOX_URL``, else this service's own
``/sandbox``).

Error mapping (base.py's contract): timeouts, connection errors, 5xx and 429 (with
``Retry-After``) → ``RetryableError``; 401/403 → ``AuthError``; 400/422 → ``InvalidRequestError``
with the sandbox's field messages; 404 → ``NotFoundError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import requests
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from integrations.errors import (
    AuthError,
    InvalidRequestError,
    NotEditableError,
    NotFoundError,
    RetryableError,
    WebhookRejected,
)
from integrations.fulfilment.base import SHIPMENT_TOPIC_KINDS, FulfilmentProvider
from integrations.locations import FulfilmentCentre
from integrations.model import (
    CancelResult,
    InventoryLevel,
    Order,
    OrderChanges,
    ProviderEvent,
    ProviderOrderRef,
    Shipment,
    ShipmentCancel,
    ShipmentLine,
)
from sandbox.accounts import token_webhook_secret
from store import metrics

JSONDict = dict[str, Any]

TOPIC_KINDS = SHIPMENT_TOPIC_KINDS
#: the sandbox requires a shipping method, as ShipBob does; orders without one go out as this
DEFAULT_METHOD = "Standard"
INVENTORY_PAGE = 1000  # stock rows per page read (the sandbox serves at most this many)


def _header(headers: Mapping[str, str], name: str) -> str:
    """Case-insensitive header read that works on plain dicts as on werkzeug's Headers."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value or ""


def _seconds(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None  # an HTTP-date Retry-After: let the job's own backoff decide


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class SandboxProvider(FulfilmentProvider):
    name = "sandbox"
    editable = frozenset({"address", "lines"})

    @property
    def base_url(self) -> str:
        return (self.options.get("url") or self.context.settings.sandbox_base_url).rstrip("/")

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request to the sandbox; any answer the caller cannot use becomes a named error."""
        token = self.token
        try:
            response = self.context.http.request(
                method,
                self.base_url + path,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=self.context.settings.provider_timeout,
                **kwargs,
            )
        except requests.Timeout as exc:
            raise RetryableError(f"sandbox {method} {path} timed out") from exc
        except requests.RequestException as exc:
            raise RetryableError(f"sandbox {method} {path} failed: {exc.__class__.__name__}") from exc
        status = response.status_code
        if status == 429:
            retry_after = _seconds(response.headers.get("Retry-After") or response.headers.get("x-retry-after"))
            metrics.count_provider_429(self.context.redis, self.name)
            raise RetryableError(f"sandbox rate limit on {method} {path}", retry_after=retry_after, status=429)
        if status >= 500:
            raise RetryableError(f"sandbox {method} {path} answered {status}", status=status)
        if status in (401, 403):
            raise AuthError(f"sandbox refused the token ({status}); check the provider's token option")
        if status == 404:
            raise NotFoundError(f"sandbox {method} {path}: not found")
        if status >= 400 and status != 409:  # 400/422 and anything unexpected: not worth repeating
            details = self._body(response).get("errors")
            message = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in (details or {}).items())
            raise InvalidRequestError(message or f"sandbox answered {status}", status=status, details=details)
        return response

    @staticmethod
    def _body(response: requests.Response) -> JSONDict:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def create_order(self, order: Order, reference: str) -> ProviderOrderRef:
        """Create; a 409 for a reference already sent is the same order (duplicate=True)."""
        response = self._call("POST", "/api/orders", json=self.order_payload(order, reference))
        body = self._body(response)
        if response.status_code == 409:
            return ProviderOrderRef(reference, str(body["order_id"]), duplicate=True)
        return ProviderOrderRef(reference, str(body["id"]))

    @staticmethod
    def order_payload(order: Order, reference: str) -> JSONDict:
        """The sandbox's create body for ``order``; a missing address is left for the API to refuse."""
        address = order.ship_to
        recipient: JSONDict = {"email": order.contact.email, "phone": order.contact.phone}
        if address is not None:
            recipient.update(
                name=address.name,
                address1=address.address1,
                address2=address.address2,
                city=address.city,
                province_code=address.province_code,
                zip=address.zip,
                country_code=address.country_code,
                phone=address.phone or order.contact.phone,
            )
        return {
            "reference": reference,
            "shipping_method": order.shipping_method or DEFAULT_METHOD,
            "recipient": recipient,
            "lines": [
                {"sku": ln.sku, "name": ln.name, "quantity": ln.quantity, "line_id": ln.platform_line_id}
                for ln in order.shippable_lines
            ],
        }

    def find_order(self, reference: str) -> ProviderOrderRef | None:
        orders = self._body(self._call("GET", "/api/orders", params={"reference": reference})).get("orders")
        if not orders:
            return None
        return ProviderOrderRef(reference, str(orders[0]["id"]))

    def cancel_order(self, ref: ProviderOrderRef) -> CancelResult:
        body = self._body(self._call("POST", f"/api/orders/{ref.provider_order_id}/cancel"))
        return CancelResult(
            outcome=body["status"],
            shipments=tuple(
                ShipmentCancel(str(s["id"]), bool(s["cancelled"]), s.get("reason", ""))
                for s in body.get("shipments", [])
            ),
        )

    def update_order(self, ref: ProviderOrderRef, order: Order, changes: OrderChanges) -> None:
        """``PUT /api/orders/<id>`` with the new recipient and/or the whole new list of lines;
        409 (a parcel already left) → ``NotEditableError`` with the sandbox's reason."""
        payload = self.order_payload(order, ref.reference)
        body = {
            key: payload[key] for key, kind in (("recipient", "address"), ("lines", "lines")) if kind in changes.kinds
        }
        response = self._call("PUT", f"/api/orders/{ref.provider_order_id}", json=body)
        if response.status_code == 409:
            raise NotEditableError(
                f"sandbox: {self._body(response).get('message') or 'the order can no longer change'}"
            )

    def inventory(self) -> Iterator[InventoryLevel]:
        """The sandbox's stock a page at a time (in SKU order), yielded as it is read. The first
        page is asked for at once, so an unreachable or refusing sandbox raises here."""
        first = self._inventory_page("")
        return self._inventory_pages(first)

    def _inventory_page(self, after: str) -> JSONDict:
        return self._body(self._call("GET", "/api/inventory", params={"limit": INVENTORY_PAGE, "after": after}))

    def _inventory_pages(self, body: JSONDict) -> Iterator[InventoryLevel]:
        while True:
            for i in body.get("items", []):
                yield InventoryLevel(
                    sku=i["sku"], location=i["location"], on_hand=i["on_hand"], fulfillable=i["fulfillable"]
                )
            if not body.get("next"):
                return
            body = self._inventory_page(str(body["next"]))

    def fulfilment_centres(self) -> list[FulfilmentCentre]:
        """The sandbox's warehouse(s), named as its inventory names them."""
        found = self._body(self._call("GET", "/api/locations")).get("locations") or []
        return [FulfilmentCentre(id=str(c["id"]), name=str(c.get("name") or c["id"])) for c in found]

    def shipments(self, ref: ProviderOrderRef) -> list[Shipment]:
        """Parcels that left the warehouse (shipped or delivered); processing ones have no tracking."""
        body = self._body(self._call("GET", f"/api/orders/{ref.provider_order_id}"))
        return [
            self._shipment(s, ref.reference, str(body["id"]), _time(s.get("shipped_at")))
            for s in body.get("shipments", [])
            if s.get("status") in ("shipped", "delivered")
        ]

    @staticmethod
    def _shipment(data: JSONDict, reference: str, order_id: str, event_time: datetime | None) -> Shipment:
        return Shipment(
            provider_shipment_id=str(data["id"]),
            reference=reference,
            provider_order_id=order_id,
            status=data.get("status", "shipped"),
            carrier=data.get("carrier", ""),
            service=data.get("service", ""),
            tracking_number=data.get("tracking_number", ""),
            tracking_url=data.get("tracking_url", ""),
            lines=tuple(ShipmentLine(ln["sku"], int(ln["quantity"])) for ln in data.get("lines", [])),
            event_time=event_time,
        )

    @property
    def token(self) -> str:
        """The bearer token naming this shop's sandbox account (the API strips it, so do we)."""
        return str(self.options.get("token", "sandbox")).strip()

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Standard Webhooks check of the raw body (HMAC, and a timestamp within 5 minutes), with
        the secret of this shop's own sandbox account: another account's signature is refused."""
        plain = {k.lower(): v for k, v in headers.items()}
        try:
            Webhook(token_webhook_secret(self.context.settings, self.token)).verify(body, plain, json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:
            # ValueError covers a malformed signature entry, bad base64 and a non-UTF-8 body.
            raise WebhookRejected(f"sandbox webhook signature rejected: {exc}", 401) from exc

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise InvalidRequestError("sandbox webhook body is not JSON") from exc
        topic = _header(headers, "x-webhook-topic") or data.get("topic", "")
        kind = TOPIC_KINDS.get(topic)
        if kind is None:
            raise InvalidRequestError(f"unknown sandbox webhook topic {topic!r}")
        event_time = _time(data.get("event_time"))
        shipment = data.get("shipment")
        return ProviderEvent(
            delivery_id=_header(headers, "webhook-id"),
            kind=kind,
            event_time=event_time,
            shipment=self._shipment(shipment, data.get("reference", ""), str(data.get("order_id", "")), event_time)
            if isinstance(shipment, dict)
            else None,
        )

    @classmethod
    def webhook_reference(cls, headers: Mapping[str, str], body: bytes) -> str:
        try:
            reference = json.loads(body).get("reference", "")
        except (ValueError, AttributeError):
            return ""
        return reference if isinstance(reference, str) else ""

    @classmethod
    def webhook_topic(cls, headers: Mapping[str, str], body: bytes) -> str:
        return _header(headers, "x-webhook-topic")
