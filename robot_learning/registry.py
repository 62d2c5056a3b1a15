"""Name -> factory registries: every choice made by name (robots, tasks, teleop devices) uses one.

Unknown names fail with the list of valid ones. Entries may be lazy (``"module:attr"``) so that a
registry can name hardware whose vendor library is not installed without importing it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name is not in a registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of factories returning ``T``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T] | str] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, factory: Callable[..., T] | str, help: str = "") -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = factory
        self._help[name] = help

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        return {name: self._help[name] for name in self.names()}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Callable[..., T]:
        """The factory for ``name``; lazy entries are imported here."""
        if name not in self._entries:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid {self.kind} names: {', '.join(self.names())}"
            )
        entry = self._entries[name]
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            module = importlib.import_module(module_name)
            resolved: Callable[..., T] = getattr(module, attr)
            self._entries[name] = resolved
            return resolved
        return entry

    def make(self, name: str, *args: object, **kwargs: object) -> T:
        return self.get(name)(*args, **kwargs)
