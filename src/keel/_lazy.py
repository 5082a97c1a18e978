"""Lazy public names: a package lists where each name lives and imports it on first use.

This keeps ``import keel.<layer>`` (and so ``keel --help``) from paying for pandas,
scikit-learn or SQLAlchemy until a name that needs them is touched.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``; ``homes`` maps a name to its module.

    A home is a full module path (``keel.store.leases``) or one relative to the package
    (``leases``).
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = home if home.startswith("keel.") else f"{package}.{home}"
        return getattr(importlib.import_module(module), name)

    return __getattr__
