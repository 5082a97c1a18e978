"""Each package's __all__ names exactly its public members, and they all exist."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import keel


def _modules() -> list[str]:
    names = ["keel"]
    for info in pkgutil.walk_packages(keel.__path__, "keel."):
        if ".migrations" not in info.name and not info.name.endswith("__main__"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_all_names_exist(name: str) -> None:
    """Everything a module lists in __all__ can be imported from it."""
    module = importlib.import_module(name)
    for member in getattr(module, "__all__", []):
        assert hasattr(module, member), f"{name}.__all__ lists missing {member}"


def _packages() -> list[str]:
    return [
        name
        for name in _modules()
        if hasattr(importlib.import_module(name), "__path__") and not name.startswith("keel.cli")
    ]


@pytest.mark.parametrize("name", _packages())
def test_packages_declare_all(name: str) -> None:
    """Every package (except the CLI's) declares its public API in __all__."""
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list | tuple), f"{name} has no __all__"
