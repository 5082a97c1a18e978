"""errors.py: the tree in its docstring is the real class tree."""

from __future__ import annotations

import inspect
import re

import keel.errors as errors


def _drawn_tree() -> dict[str, int]:
    """Class name -> indentation depth, read from the module docstring."""
    tree = {}
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^\s*((?:│   |    )*)(?:├── |└── )?([A-Z]\w+)(?:\s|$)", line)
        if match and hasattr(errors, match.group(2)):
            depth = len(match.group(1)) // 4 + (1 if ("├" in line or "└" in line) else 0)
            tree[match.group(2)] = depth
    return tree


def test_every_error_class_is_drawn() -> None:
    """No exception class is missing from the docstring tree."""
    classes = {
        name
        for name, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.KeelError)
    }
    assert classes == set(_drawn_tree())


def test_drawn_depth_matches_inheritance() -> None:
    """Each class sits in the drawing at the depth of its inheritance from KeelError."""
    for name, depth in _drawn_tree().items():
        cls = getattr(errors, name)
        ancestry = [c for c in cls.__mro__ if issubclass(c, errors.KeelError)]
        assert len(ancestry) - 1 == depth, name


def test_all_lists_every_error() -> None:
    """__all__ exports every error class."""
    assert set(errors.__all__) == set(_drawn_tree())


def test_missing_extra_names_the_install() -> None:
    """A missing optional dependency says which pip install fixes it."""
    message = str(errors.MissingExtraError("psycopg", "postgres"))
    assert "pip install 'keel-ml[postgres]'" in message
