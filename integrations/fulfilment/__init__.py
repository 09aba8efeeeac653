"""Registry of fulfilment providers: the name stored on a shop row → its adapter class.

Jobs ask ``get(shop.provider)`` and never import a provider module by name. ``check()`` runs at
start-up so that a shop naming an unknown provider fails loudly, not on its first order.
"""

from __future__ import annotations

import importlib

from integrations.errors import ConfigError
from integrations.fulfilment.base import FulfilmentProvider

# name → "module:Class"; imported lazily so a provider's dependencies load only when used.
PROVIDERS: dict[str, str] = {
    "sandbox": "integrations.fulfilment.sandbox:SandboxProvider",
    "shipbob": "integrations.fulfilment.shipbob:ShipBobProvider",
}


def get(name: str) -> type[FulfilmentProvider]:
    """The adapter class for ``name``; ``ConfigError`` names the known ones otherwise."""
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise ConfigError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not issubclass(cls, FulfilmentProvider):
        raise ConfigError(f"{target} is not a FulfilmentProvider")
    return cls


def names() -> list[str]:
    return sorted(PROVIDERS)


def check() -> None:
    """Import every registered provider once (start-up check)."""
    for name in PROVIDERS:
        get(name)
