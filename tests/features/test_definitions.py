"""Feature definitions: validation, loading from features.py, and stable hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.errors import FeatureError
from keel.features import Aggregation, FeatureView, load_features

from .conftest import FEATURES


def _view(**overrides: object) -> FeatureView:
    spec: dict[str, object] = {
        "name": "v",
        "source": "events",
        "entity": "id",
        "timestamp": "ts",
        "features": (Aggregation("n_7d", fn="count", window="7d"),),
    }
    return FeatureView(**(spec | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Aggregation("bad name", fn="count", window="1d"), "must be a Python identifier"),
        (lambda: Aggregation("s", fn="sum", window="1d"), "sum needs a column"),
        (lambda: Aggregation("s", fn="median", window="1d"), "unknown fn 'median'"),  # type: ignore[arg-type]
        (lambda: Aggregation("s", fn="count", window="soon"), "not a duration"),
        (lambda: _view(features=()), "has no features"),
        (
            lambda: _view(features=("a", Aggregation("n", fn="count", window="1d"))),
            "mixes columns and aggregations",
        ),
        (
            lambda: _view(every="1d", features=(Aggregation("n", fn="count", window="36h"),)),
            "not a multiple of the view's grid step",
        ),
        (lambda: _view(features=("entity_id",)), "reserved"),
    ],
)
def test_invalid_definitions_are_refused(make: object, message: str) -> None:
    """Mistakes in a definition fail when features.py is loaded, with the reason."""
    with pytest.raises(FeatureError, match=message):
        make()  # type: ignore[operator]


def test_hash_is_stable_and_changes_with_the_definition() -> None:
    """The same definition hashes the same; any change gives a new hash."""
    assert _view().definition_hash == _view().definition_hash
    assert _view().definition_hash != _view(ttl="2d").definition_hash


def test_load_collects_views_and_transforms(tmp_path: Path) -> None:
    """Module-level views and decorated transforms are found by name."""
    path = tmp_path / "features.py"
    path.write_text(FEATURES)
    features = load_features(path)
    assert sorted(features.views) == ["activity", "profile"]
    assert list(features.transforms) == ["spend_ratio"]
    assert features.feature_names[-1] == "spend_ratio"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import not_a_module_anywhere\n", "failed to import: ModuleNotFoundError"),
        ("def broken(:\n", "failed to import: SyntaxError"),
        (
            FEATURES + "\nprofile2 = FeatureView(name='profile', source='s', entity='e', "
            "timestamp='t', features=('a',))\n",
            "two definitions are named 'profile'",
        ),
    ],
)
def test_bad_features_module_is_a_clear_error(tmp_path: Path, source: str, message: str) -> None:
    """A features.py that cannot be loaded names the file and the problem."""
    path = tmp_path / "features.py"
    path.write_text(source)
    with pytest.raises(FeatureError, match=message):
        load_features(path)


def test_missing_module_is_named(tmp_path: Path) -> None:
    """A features.module that does not exist says so."""
    with pytest.raises(FeatureError, match="does not exist"):
        load_features(tmp_path / "nope.py")
