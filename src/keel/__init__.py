"""Keel: take a machine-learning model from pilot to production.

The public names are imported on first use so that ``keel --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["KeelError", "Project", "__version__"]

if TYPE_CHECKING:
    from keel.errors import KeelError
    from keel.project import Project

_LAZY = {"KeelError": "keel.errors", "Project": "keel.project"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'keel' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
