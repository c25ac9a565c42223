"""Lazy public names for a package's ``__init__``: the module holding a name is imported on first
use (PEP 562), so importing the package stays cheap (no torch, no statsmodels until needed)."""
from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, tuple], also: tuple = ()):
    """``exports``: module -> the names it provides, each a name or ``(public name, attribute)``;
    ``also``: names the package defines itself.

    Returns ``(__all__, __getattr__, __dir__)`` for the package's namespace."""
    table = {}
    for module, names in exports.items():
        for entry in names:
            public, attr = (entry, entry) if isinstance(entry, str) else entry
            table[public] = (module, attr)

    def __getattr__(name: str):
        if name in table:
            module, attr = table[name]
            return getattr(importlib.import_module(module), attr)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    names = [*also, *table]
    return names, __getattr__, lambda: sorted(names)
