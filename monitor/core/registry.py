"""A registry of named extension classes (checks, receiver kinds), with listeners told of changes
(the config rebuilds the sections the registered classes own)."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._listeners: list[Callable[[], None]] = []

    def add(self, name: str, item: T) -> None:
        """Register ``item`` under ``name`` (again: replaced, in its first place)."""
        self._items[name] = item
        self._changed()

    def remove(self, name: str) -> None:
        self._items.pop(name, None)
        self._changed()

    def items(self) -> dict[str, T]:
        """Everything registered, by name, in registration order."""
        return dict(self._items)

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()
