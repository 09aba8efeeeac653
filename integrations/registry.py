"""A registry from the name stored on a shop row to the adapter class that serves it.

Entries are ``"module:Class"`` strings imported on first use, so an adapter's dependencies load
only when a shop needs it; ``check()`` imports them all at start-up so that a bad entry fails
loudly there, not on a shop's first order.
"""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

from integrations.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, base: type[T], entries: dict[str, str]):
        self.kind = kind
        self.base = base
        self.entries = entries
        self._builtin = dict(entries)

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; ``ConfigError`` names the known ones otherwise."""
        try:
            target = self.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.entries))
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}") from None
        module_name, _, class_name = target.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise ConfigError(f"{target} is not a {self.base.__name__}")
        return cls

    def register(self, name: str, target: str) -> None:
        """Add an entry at run time: how an optional package (the development sandbox) plugs in
        without product code importing it."""
        self.entries[name] = target

    def reset(self) -> None:
        """Only the built-in entries again (a process whose settings disable the optional ones)."""
        self.entries.clear()
        self.entries.update(self._builtin)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def check(self) -> None:
        """Import every registered class once (start-up check)."""
        for name in self.entries:
            self.get(name)
