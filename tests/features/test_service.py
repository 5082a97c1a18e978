"""Online and offline agree; materialization is incremental and idempotent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from keel.errors import FeatureError
from keel.features import FeatureStore
from keel.features.offline import plain

from .conftest import FEATURES, ingest

ENTITIES = ["c1", "c2", "c3", "nobody"]


def _offline(store: FeatureStore, at: datetime) -> list[dict[str, object]]:
    labels = pd.DataFrame({"customer_id": ENTITIES, "ts": [at] * len(ENTITIES)})
    frame = store.training_set(labels, "ts").frame
    names = store.features.feature_names
    return [{n: plain(row[n]) for n in names} for _, row in frame.iterrows()]


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 1, 2, 6),
        datetime(2026, 1, 4, 0),
        datetime(2026, 1, 5, 23, 59),
        datetime(2026, 1, 9),
    ],
)
def test_online_equals_offline_at_the_materialized_time(
    open_store: Callable[[], FeatureStore], at: datetime
) -> None:
    """Materialized at t, the online answer for every entity equals the offline join at t."""
    store = open_store()
    store.materialize(at)
    online = [f.values for f in store.lookup([{"customer_id": e} for e in ENTITIES], at)]
    assert online == _offline(store, at)


def test_skew_check_passes_when_up_to_date(open_store: Callable[[], FeatureStore]) -> None:
    """The built-in check finds no mismatch right after materializing."""
    store = open_store()
    at = datetime(2026, 1, 4, 12)
    store.materialize(at)
    report = store.check(["c1", "c2", "c3"], at)
    assert report.ok and report.checked == 3


def test_skew_check_reports_an_out_of_date_online_store(
    open_store: Callable[[], FeatureStore],
) -> None:
    """Without a fresh materialization the check names the stale features."""
    store = open_store()
    store.materialize(datetime(2026, 1, 2, 12))
    report = store.check(["c1"], datetime(2026, 1, 4, 12))
    assert not report.ok
    assert {m["feature"] for m in report.mismatches} >= {"tickets_3d"}
    assert report.mismatches[0]["stale"] == ["activity"]


def test_stale_values_are_served_as_null_with_a_flag(
    open_store: Callable[[], FeatureStore],
) -> None:
    """A value past the view's TTL is not served."""
    store = open_store()
    store.materialize(datetime(2026, 1, 4))
    fresh = store.lookup([{"customer_id": "c1"}], datetime(2026, 1, 4, 12))[0]
    assert fresh.values["tickets_3d"] == 2 and fresh.stale == ()
    late = store.lookup([{"customer_id": "c1"}], datetime(2026, 1, 6))[0]
    assert late.values["tickets_3d"] is None
    assert late.stale == ("activity",)


def test_unknown_entity_is_null_and_flagged(open_store: Callable[[], FeatureStore]) -> None:
    """An entity the store has never seen is not an error."""
    store = open_store()
    store.materialize(datetime(2026, 1, 4))
    found = store.lookup([{"customer_id": "nobody"}], datetime(2026, 1, 4, 1))[0]
    assert set(found.missing) == {"profile", "activity"}
    assert all(value is None for value in found.values.values())


def test_materializing_the_same_window_twice_writes_nothing_new(
    open_store: Callable[[], FeatureStore],
) -> None:
    """Idempotent: the second run writes zero rows and the answers do not change."""
    store = open_store()
    at = datetime(2026, 1, 4, 6)
    first = store.materialize(at)
    before = store.lookup([{"customer_id": e} for e in ENTITIES], at)
    second = store.materialize(at)
    assert sum(m.written for m in first) > 0
    assert sum(m.written for m in second) == 0
    assert store.lookup([{"customer_id": e} for e in ENTITIES], at) == before


def test_materialization_is_incremental(open_store: Callable[[], FeatureStore]) -> None:
    """Moving the window on writes only entities whose newest row changed."""
    store = open_store()
    store.materialize(datetime(2026, 1, 3))
    later = {m.view: m.written for m in store.materialize(datetime(2026, 1, 6))}
    assert later["profile"] == 1  # only c1 was updated (on 01-05)
    assert later["activity"] == 3  # every entity gets a new grid row


def test_events_in_the_future_are_not_served(
    feature_project: Path, open_store: Callable[[], FeatureStore]
) -> None:
    """A row stamped after the materialization time stays out of the online store."""
    (feature_project / "data" / "customers-future.csv").write_text(
        "customer_id,updated_at,plan,charges\nc2,2030-01-01 00:00:00,gold,1.0\n"
    )
    ingest(feature_project)
    store = open_store()
    store.materialize(datetime(2026, 1, 5))
    assert store.lookup([{"customer_id": "c2"}], datetime(2026, 1, 5))[0].values["plan"] == (
        "premium"
    )


def test_changed_definition_replaces_online_rows(
    feature_project: Path, open_store: Callable[[], FeatureStore]
) -> None:
    """Editing a view's definition clears its old online rows on the next materialize."""
    open_store().materialize(datetime(2026, 1, 4))
    (feature_project / "features.py").write_text(FEATURES.replace('window="3d"', 'window="1d"'))
    store = open_store()
    store.materialize(datetime(2026, 1, 4))
    found = store.lookup([{"customer_id": "c1"}], datetime(2026, 1, 4))[0]
    assert found.values["tickets_3d"] == 1  # one day back: only the ticket of 01-03, not 01-01


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("raise ValueError('boom')", "transform 'bad' raised ValueError: boom"),
        ("return [1, 2]", "transform 'bad' returned a list"),
    ],
)
def test_transform_errors_are_named(
    feature_project: Path, open_store: Callable[[], FeatureStore], body: str, message: str
) -> None:
    """A transform that raises or returns an odd type fails with its name."""
    (feature_project / "features.py").write_text(
        FEATURES + f"\n\n@request_transform()\ndef bad(row):\n    {body}\n"
    )
    store = open_store()
    store.materialize(datetime(2026, 1, 4))
    with pytest.raises(FeatureError, match=message):
        store.lookup([{"customer_id": "c1"}], datetime(2026, 1, 4))


def test_transform_nan_becomes_null(
    feature_project: Path, open_store: Callable[[], FeatureStore]
) -> None:
    """NaN from a transform is served, and joined, as null."""
    (feature_project / "features.py").write_text(
        FEATURES + "\n\n@request_transform()\ndef nan(row):\n    return float('nan')\n"
    )
    store = open_store()
    store.materialize(datetime(2026, 1, 4))
    assert store.lookup([{"customer_id": "c1"}], datetime(2026, 1, 4))[0].values["nan"] is None
    at = datetime(2026, 1, 4) + timedelta(hours=1)
    assert _offline(store, at)[0]["nan"] is None
