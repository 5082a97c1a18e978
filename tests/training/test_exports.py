"""keel.training's public names: __all__ is sorted and every name resolves."""

from __future__ import annotations

import keel.training


def test_all_is_sorted() -> None:
    """__all__ is kept in alphabetical order."""
    assert keel.training.__all__ == sorted(keel.training.__all__)


def test_every_public_name_resolves() -> None:
    """Each name in __all__ is importable from keel.training."""
    for name in keel.training.__all__:
        assert getattr(keel.training, name) is not None
