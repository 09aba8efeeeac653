"""Relais as a Shopify fulfilment service: create it once per provider account, find it again.

``fulfillmentServiceCreate`` makes the service and a Location named after it (shopify.dev
FulfillmentService); Shopify then routes to that location the fulfilment orders of the products
stocked there, and sends their fulfilment and cancellation requests to ``callbackUrl`` +
``/fulfillment_order_notification``. ``inventoryManagement``: stock is written to its location by
Relais; ``trackingSupport``: tracking is given through ``fulfillmentCreate``.

Never two services: the shop's services (``shop.fulfillmentServices``) are read first and one
with our name is adopted, so a second install, or a create whose answer was lost, finds the
first. A create that times out raises ``RetryableError`` and is never re-sent blindly.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.shopify.admin import AdminClient

SERVICES = """
query RelaisFulfilmentServices {
  shop {
    fulfillmentServices { id serviceName callbackUrl location { id } }
  }
}
"""

SERVICE_CREATE = """
mutation RelaisFulfilmentServiceCreate($name: String!, $callbackUrl: URL, $inventory: Boolean, $tracking: Boolean) {
  fulfillmentServiceCreate(
    name: $name
    callbackUrl: $callbackUrl
    inventoryManagement: $inventory
    trackingSupport: $tracking
    requiresShippingMethod: true
  ) {
    fulfillmentService { id serviceName callbackUrl location { id } }
    userErrors { field message }
  }
}
"""

CALLBACK_PATH = "/shopify/fulfilment-service"  # Shopify appends /fulfillment_order_notification


@dataclass(frozen=True)
class ServiceRef:
    service_id: str
    location_id: str
    name: str
    callback_url: str
    created: bool


def service_name(provider: str, account: str = "") -> str:
    """The merchant-visible name: one service per provider account (warehouse)."""
    label = f"Relais {provider}".strip()
    return f"{label} {account}".strip() if account else label


def callback_url(public_url: str) -> str:
    return public_url.rstrip("/") + CALLBACK_PATH


def find_service(client: AdminClient, name: str) -> ServiceRef | None:
    for found in client.query(SERVICES)["shop"]["fulfillmentServices"]:
        if found["serviceName"] == name and found.get("location"):
            return ServiceRef(found["id"], found["location"]["id"], name, found.get("callbackUrl") or "", False)
    return None


def ensure_service(client: AdminClient, name: str, callback: str) -> ServiceRef:
    """The shop's service called ``name``, created (with its location) when it has none."""
    found = find_service(client, name)
    if found is not None:
        return found
    variables = {"name": name, "callbackUrl": callback, "inventory": True, "tracking": True}
    made = client.mutate(SERVICE_CREATE, variables, "fulfillmentServiceCreate")["fulfillmentService"]
    return ServiceRef(made["id"], made["location"]["id"], name, made.get("callbackUrl") or callback, True)
