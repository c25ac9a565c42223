"""One small registry for named things: datasets, features, tasks, studies.

A registry maps a name to an entry (a loader, a feature description, a task) and says, for an
unknown name, which names it knows and which are close::

    DATASETS = Registry("dataset")

    @DATASETS.register("xpos")
    def load_xpos(mirror, variant): ...

    DATASETS.get("xpso")   # ConfigError: unknown dataset 'xpso'; did you mean 'xpos'? available: xpos, ...

Entries keep their registration order (``names()``), so the first registered is the natural default.
A registry may be filled lazily: ``loader`` is called once, before the first lookup, to import the
modules that register themselves (as the fine-tuning tasks do).
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, with "unknown X; available: ..." errors."""

    def __init__(self, kind: str, *, loader: Callable[[], None] | None = None):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._loader = loader
        self._loaded = loader is None

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            assert self._loader is not None
            self._loader()

    def add(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Register ``entry`` under ``name``; a second entry of the same name is an error."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries and not replace and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> T:
        """Take ``name`` out of the registry (tests that register a temporary entry)."""
        self._load()
        return self._entries.pop(name)

    def register(self, name: str, entry: T | None = None):
        """``register(name, entry)``, or ``@register(name)`` as a decorator."""
        if entry is not None:
            return self.add(name, entry)

        def decorator(obj: T) -> T:
            return self.add(name, obj)

        return decorator

    def get(self, name: str) -> T:
        """The entry of ``name``; :class:`ConfigError` listing the known names otherwise."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(self.unknown_message(name)) from None

    def unknown_message(self, name) -> str:
        self._load()
        near = difflib.get_close_matches(str(name), list(self._entries), n=3)
        hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        return f"unknown {self.kind} {name!r}{hint}; available: {', '.join(self._entries) or '(none)'}"

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)

    def items(self):
        self._load()
        return list(self._entries.items())

    def __contains__(self, name) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"
