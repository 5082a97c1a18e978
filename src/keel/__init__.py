"""Keel: take a machine-learning model from pilot to production.

The public names are imported on first use so that ``keel --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel._lazy import lazy_getattr

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "KeelError", "Project", "__version__"]

if TYPE_CHECKING:
    from keel.client import AsyncClient, Client
    from keel.errors import KeelError
    from keel.project import Project

_LAZY = {
    "AsyncClient": "keel.client",
    "Client": "keel.client",
    "KeelError": "keel.errors",
    "Project": "keel.project",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
