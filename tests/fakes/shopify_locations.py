"""The fake Shopify's locations and order risk assessments (GraphQL ``locations``, ``order.risk``).

Locations are listed as Shopify lists them: active ones only unless ``includeInactive``, paged
with ``first``/``after``, sorted by name when asked. An order's risk is an ``OrderRiskSummary``
set by the test (no assessment and recommendation NONE until then, as a fresh order has);
``risk_reads`` counts the orders whose risk was read, so a test can say "no risk call at all".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLError


class FakeLocations:
    def __init__(self) -> None:
        self.locations: list[dict[str, Any]] = []
        self.risks: dict[str, dict[str, Any]] = {}
        self.risk_reads: list[str] = []

    def add_location(
        self, gid: str, name: str, *, active: bool = True, online: bool = True, service: bool = False
    ) -> None:
        self.locations.append(
            {
                "id": gid,
                "name": name,
                "isActive": active,
                "fulfillsOnlineOrders": online,
                "isFulfillmentService": service,
            }
        )

    def set_risk(self, order_gid: str, *levels: str, recommendation: str = "NONE", facts: tuple[str, ...] = ()) -> None:
        """The order's assessments (``HIGH``, ``MEDIUM``, ``LOW``, ``NONE``, ``PENDING``)."""
        self.risks[order_gid] = {
            "recommendation": recommendation,
            "assessments": [
                {
                    "riskLevel": level,
                    "provider": None,
                    "facts": [{"description": f, "sentiment": "NEGATIVE"} for f in facts],
                }
                for level in levels
            ],
        }

    def root(self, order: Callable[..., Any]) -> dict[str, Any]:
        """Resolvers; ``order`` is the fake's own order resolver, given a ``risk`` field."""

        def with_risk(info: Any, id: str) -> dict[str, Any] | None:
            view = order(info, id)
            if view is None and id not in self.risks:
                return None
            view = dict(view or {"id": id})

            def risk(_info: Any) -> dict[str, Any]:
                self.risk_reads.append(id)
                return self.risks.get(id, {"recommendation": "NONE", "assessments": []})

            view["risk"] = risk
            return view

        return {"locations": self._locations, "order": with_risk}

    def _locations(
        self,
        _info: Any,
        first: int | None = None,
        after: str | None = None,
        includeInactive: bool = False,
        sortKey: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        if first is None or not 0 < first <= 250:
            raise GraphQLError("first must be between 1 and 250")
        found = [loc for loc in self.locations if includeInactive or loc["isActive"]]
        if sortKey == "NAME":
            found.sort(key=lambda loc: loc["name"].lower())
        start = int(after) if after else 0
        end = start + first
        return {
            "nodes": found[start:end],
            "pageInfo": {"hasNextPage": end < len(found), "endCursor": str(min(end, len(found)))},
        }
