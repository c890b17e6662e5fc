"""A small name -> entry registry with helpful errors for unknown names.

Used for the measure registry of :mod:`theorylab.graphs`, the ``papers`` and ``benchmarks``
harnesses, and anywhere else a family exposes "pick an algorithm by name".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError"]


class UnknownNameError(KeyError, ValueError):
    """Raised for a name that is not registered; its message lists the valid names."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Ordered mapping from names to entries, filled by :meth:`add` or the :meth:`register`
    decorator; looking up an unknown name raises :class:`UnknownNameError`."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T, *, replace: bool = False) -> T:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} name must be a non-empty str; got {name!r}")
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(entry: T) -> T:
            return self.add(name, entry)

        return decorator

    def remove(self, name: str) -> T:
        return self._entries.pop(self._check(name))

    def _check(self, name: str) -> str:
        if name not in self._entries:
            valid = ", ".join(sorted(self._entries)) or "(none registered)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {valid}")
        return name

    def __getitem__(self, name: str) -> T:
        return self._entries[self._check(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self):
        return self._entries.items()

    def values(self):
        return self._entries.values()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
