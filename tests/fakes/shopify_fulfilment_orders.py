"""The fake Shopify's fulfilment services and the request handshake on their fulfilment orders.

As shopify.dev documents it: ``fulfillmentServiceCreate`` makes the service and its location
(a name already taken is a userError); the merchant's fulfilment and cancellation requests are
states of the FO (``requestStatus``); a service answers only a request that is waiting
(accepting twice is a userError, as on Shopify); ``assignedFulfillmentOrders`` lists the FOs at
the app's service locations by assignment status. ``fulfillmentCreate`` on a service's FO needs
its request accepted (``shopify_fulfilment.FakeState``). Test hooks play the merchant's side.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.shopify_fulfilment import FakeFO, FakeState, _page

ASSIGNMENT = {
    "FULFILLMENT_REQUESTED": "SUBMITTED",
    "CANCELLATION_REQUESTED": "CANCELLATION_REQUESTED",
    "FULFILLMENT_ACCEPTED": "ACCEPTED",
    "FULFILLMENT_UNSUBMITTED": "UNSUBMITTED",
}


@dataclass
class FakeService:
    id: str
    name: str
    callback_url: str | None
    location_id: str
    inventory_management: bool
    tracking_support: bool


@dataclass
class FakeServices:
    """Services and answers of the fake shop (one app). Called under the admin server's lock."""

    state: FakeState
    services: list[FakeService] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)  # every accept/reject, as sent
    _ids: Any = field(default_factory=lambda: itertools.count(77_000_001))

    # --- the merchant's side (tests) ------------------------------------------------------------
    def request_fulfilment(self, fo_id: str) -> None:
        fo = self.state.fos[fo_id]
        assert fo.location_id in self.state.service_locations and fo.status == "OPEN"
        fo.request_status = "SUBMITTED"

    def request_cancellation(self, fo_id: str) -> None:
        fo = self.state.fos[fo_id]
        assert fo.request_status == "ACCEPTED"
        fo.request_status = "CANCELLATION_REQUESTED"

    def hold(self, fo_id: str) -> None:
        self.state.fos[fo_id].status = "ON_HOLD"

    def move(self, fo_id: str, location_id: str) -> None:
        self.state.fos[fo_id].location_id = location_id

    # --- GraphQL ----------------------------------------------------------------------------
    def root(self) -> dict[str, Any]:
        return {
            "shop": lambda _info: {"fulfillmentServices": [self._view(s) for s in self.services]},
            "fulfillmentServiceCreate": lambda _info, **args: self.create(**args),
            "assignedFulfillmentOrders": lambda _info, **args: self.assigned(**args),
            "fulfillmentOrderAcceptFulfillmentRequest": lambda _info, **a: self.answer("accept_request", **a),
            "fulfillmentOrderRejectFulfillmentRequest": lambda _info, **a: self.answer("reject_request", **a),
            "fulfillmentOrderAcceptCancellationRequest": lambda _info, **a: self.answer("accept_cancellation", **a),
            "fulfillmentOrderRejectCancellationRequest": lambda _info, **a: self.answer("reject_cancellation", **a),
        }

    def _view(self, service: FakeService) -> dict[str, Any]:
        return {
            "id": service.id,
            "serviceName": service.name,
            "callbackUrl": service.callback_url,
            "location": {"id": service.location_id},
        }

    def create(
        self,
        name: str,
        callbackUrl: str | None = None,
        inventoryManagement: bool | None = None,
        trackingSupport: bool | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        if any(s.name == name for s in self.services):
            return {
                "fulfillmentService": None,
                "userErrors": [{"field": ["name"], "message": "Name has already been taken"}],
            }
        number = next(self._ids)
        service = FakeService(
            f"gid://shopify/FulfillmentService/{number}",
            name,
            callbackUrl,
            f"gid://shopify/Location/{number}",
            bool(inventoryManagement),
            bool(trackingSupport),
        )
        self.services.append(service)
        self.state.service_locations.add(service.location_id)
        return {"fulfillmentService": self._view(service), "userErrors": []}

    def assigned(self, assignmentStatus: str | None = None, locationIds: list[str] | None = None, **page: Any) -> Any:
        ours = [
            fo
            for fo in self.state.fos.values()
            if fo.location_id in self.state.service_locations
            and (not locationIds or fo.location_id in locationIds)
            and (fo.request_status == ASSIGNMENT[assignmentStatus] if assignmentStatus else fo.status != "CLOSED")
        ]
        return _page([self.state._fo_view(fo) for fo in ours], **page)

    def answer(self, kind: str, id: str, message: str | None = None, reason: str | None = None, **_: Any) -> Any:
        fo = self.state.fos.get(id)
        if fo is None or fo.location_id not in self.state.service_locations:
            return _refused("Fulfillment order does not exist.")
        waiting = "CANCELLATION_REQUESTED" if kind.endswith("cancellation") else "SUBMITTED"
        if fo.request_status != waiting:
            return _refused(f"Cannot {kind.replace('_', ' ')} for the fulfillment order ({fo.request_status}).")
        _apply(fo, kind)
        self.answers.append({"kind": kind, "id": id, "message": message, "reason": reason})
        return {"fulfillmentOrder": self.state._fo_view(fo), "userErrors": []}


def _apply(fo: FakeFO, kind: str) -> None:
    if kind == "accept_request":
        fo.request_status, fo.status = "ACCEPTED", "IN_PROGRESS"
    elif kind == "reject_request":
        fo.request_status = "REJECTED"
    elif kind == "accept_cancellation":
        fo.request_status, fo.status = "CANCELLATION_ACCEPTED", "CANCELLED"
    else:
        fo.request_status = "CANCELLATION_REJECTED"


def _refused(message: str) -> dict[str, Any]:
    return {"fulfillmentOrder": None, "userErrors": [{"field": ["id"], "message": message}]}
