"""The package's public names are exactly its curated __all__."""

from __future__ import annotations

import keel.monitoring


def test_every_name_in_all_resolves() -> None:
    """Each name in __all__ imports (lazily) to a real object."""
    for name in keel.monitoring.__all__:
        assert getattr(keel.monitoring, name) is not None


def test_all_is_sorted_and_unique() -> None:
    """__all__ lists each public name once, sorted."""
    names = keel.monitoring.__all__
    assert names == sorted(set(names))
