"""An order's fraud risk, read from Shopify's GraphQL ``Order.risk`` (``OrderRiskSummary``).

The order webhook carries no usable risk (its REST ``risks`` are deprecated and often absent),
so the hold rule asks here before an order is pushed. Each assessment (Shopify's own, and those
of fraud apps) has a ``riskLevel`` among HIGH, MEDIUM, LOW, NONE and PENDING; the summary's
``recommendation`` is CANCEL, INVESTIGATE, ACCEPT or NONE. An order is high risk when any
assessment is HIGH or Shopify recommends cancelling; it is pending while an assessment is PENDING,
or while there is no assessment at all and no recommendation yet (Shopify's analysis lands
seconds to minutes after the order).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.errors import NotFoundError
from integrations.locations import RiskAssessment
from integrations.shopify.admin import AdminClient
from integrations.shopify.fulfilment import gid

ORDER_RISK = """
query RelaisOrderRisk($id: ID!) {
  order(id: $id) {
    id
    risk {
      recommendation
      assessments { riskLevel facts { description sentiment } }
    }
  }
}
"""

_RANK = {"HIGH": 4, "PENDING": 3, "MEDIUM": 2, "LOW": 1, "NONE": 0}


def order_risk(client: AdminClient, order_id: str) -> RiskAssessment:
    """The order's risk summed up. Raises ``NotFoundError`` (no such order), ``RetryableError``."""
    order = client.query(ORDER_RISK, {"id": gid("Order", order_id)}).get("order")
    if order is None:
        raise NotFoundError(f"Shopify has no order {order_id}")
    return summarise(order.get("risk") or {})


def summarise(risk: Mapping[str, Any]) -> RiskAssessment:
    """Pure: an ``OrderRiskSummary`` as JSON → the worst level and the facts that speak against."""
    assessments = risk.get("assessments") or []
    recommendation = str(risk.get("recommendation") or "NONE")
    levels = [str(a.get("riskLevel") or "NONE") for a in assessments]
    facts = tuple(
        str(f.get("description"))
        for a in assessments
        for f in a.get("facts") or []
        if f.get("sentiment") == "NEGATIVE" and f.get("description")
    )
    if recommendation == "CANCEL" or "HIGH" in levels:
        return RiskAssessment("high", facts)
    if "PENDING" in levels or (not levels and recommendation == "NONE"):
        return RiskAssessment("pending", facts)
    worst = max(levels, key=lambda level: _RANK.get(level, 0)) if levels else "NONE"
    return RiskAssessment(worst.lower(), facts)
