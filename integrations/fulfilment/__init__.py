"""Registry of fulfilment providers: the name stored on a shop row → its adapter class.

Jobs ask ``get(shop.provider)`` and never import a provider module by name. ``check()`` runs at
start-up so that a shop naming an unknown provider fails loudly, not on its first order.
"""

from __future__ import annotations

from integrations.fulfilment.base import FulfilmentProvider
from integrations.registry import Registry

# name → "module:Class"; imported lazily so a provider's dependencies load only when used. The
# development sandbox adds "sandbox" here itself (``sandbox.enable``), and only outside production.
PROVIDERS: dict[str, str] = {
    "shipbob": "integrations.fulfilment.shipbob:ShipBobProvider",
}


_registry = Registry("provider", FulfilmentProvider, PROVIDERS)
get = _registry.get
names = _registry.names
register = _registry.register
reset = _registry.reset
check = _registry.check
