"""The shop's locations, read from Shopify's GraphQL Admin API (``read_locations`` scope).

Only active locations are listed (``includeInactive: false``, Shopify's default): stock cannot
be written to a deactivated one. A shop has at most a few hundred locations; one page of 250
covers almost every shop, and the rest is paged.
"""

from __future__ import annotations

from integrations.locations import ShopLocation
from integrations.shopify.admin import AdminClient

PAGE = 250  # 2 + 250 × 1 requested points: well under the 1000 ceiling of one query

LOCATIONS = """
query RelaisLocations($first: Int!, $after: String) {
  locations(first: $first, after: $after, includeInactive: false, sortKey: NAME) {
    pageInfo { hasNextPage endCursor }
    nodes { id name isActive fulfillsOnlineOrders isFulfillmentService }
  }
}
"""


def list_locations(client: AdminClient) -> list[ShopLocation]:
    """Every active location of the shop, by name. Raises ``RetryableError``, ``AuthError``."""
    found: list[ShopLocation] = []
    after = None
    while True:
        page = client.query(LOCATIONS, {"first": PAGE, "after": after})["locations"]
        found.extend(
            ShopLocation(
                id=node["id"],
                name=node["name"],
                fulfils_online_orders=bool(node["fulfillsOnlineOrders"]),
                fulfilment_service=bool(node["isFulfillmentService"]),
            )
            for node in page["nodes"]
            if node.get("isActive", True)
        )
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]
