"""Point-in-time training sets: right values, no leaks, no dropped rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from keel.errors import FeatureError
from keel.features import FeatureStore

from .conftest import ingest


def _labels(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows], format="ISO8601"),
            "label": list(range(len(rows))),
        }
    )


def _row(frame: pd.DataFrame, i: int) -> dict[str, object]:
    return {k: (None if pd.isna(v) else v) for k, v in frame.iloc[i].to_dict().items()}


def test_attribute_value_is_the_latest_at_or_before_the_label(
    open_store: Callable[[], FeatureStore],
) -> None:
    """A label between two customer updates sees the earlier one."""
    frame = (
        open_store()
        .training_set(_labels(("c1", "2026-01-04 12:00"), ("c1", "2026-01-05 00:00")), "ts")
        .frame
    )
    assert _row(frame, 0)["plan"] == "basic"
    assert _row(frame, 1)["plan"] == "standard"


def test_aggregation_covers_the_window_before_the_grid_time(
    open_store: Callable[[], FeatureStore],
) -> None:
    """At 2026-01-04 10:00 the row of 01-04 00:00 counts tickets in [01-01, 01-04)."""
    frame = open_store().training_set(_labels(("c1", "2026-01-04 10:00")), "ts").frame
    row = _row(frame, 0)
    assert row["tickets_3d"] == 2  # 01-01 10:00 and 01-03 23:59:59
    assert row["spend_2d"] == 10.0  # the payment of 01-02 09:00
    assert row["spend_ratio"] == 10.0 / 10.0


def test_a_future_value_is_never_joined(open_store: Callable[[], FeatureStore]) -> None:
    """An event one second after the grid time is not in that grid row (no leakage)."""
    frame = open_store().training_set(_labels(("c1", "2026-01-03 23:59:59")), "ts").frame
    # the row at 01-03 00:00 covers [01-01, 01-03): the ticket at 01-03 23:59:59 is future
    assert _row(frame, 0)["tickets_3d"] == 1


def test_no_label_row_is_dropped(open_store: Callable[[], FeatureStore]) -> None:
    """Unknown entities, labels before any data and stale values all keep their row."""
    labels = _labels(
        ("nobody", "2026-01-03 00:00"),
        ("c1", "2025-12-01 00:00"),
        ("c2", "2026-03-01 00:00"),
        ("c1", "2026-01-04 10:00"),
    )
    result = open_store().training_set(labels, "ts")
    assert list(result.frame["label"]) == [0, 1, 2, 3]
    assert result.frame["plan"].isna().tolist() == [True, True, True, False]
    assert result.missing["plan"] == 3
    assert result.frame["profile__missing"].tolist() == [True, True, True, False]


def test_ttl_expires_values(open_store: Callable[[], FeatureStore]) -> None:
    """A customer row older than the view's 10-day TTL is not used."""
    frame = (
        open_store()
        .training_set(_labels(("c2", "2026-01-10 00:00"), ("c2", "2026-01-11 00:00:01")), "ts")
        .frame
    )
    assert _row(frame, 0)["plan"] == "premium"
    assert _row(frame, 1)["plan"] is None


def test_ties_at_one_timestamp_pick_the_row_ingested_last(
    feature_project: Path, open_store: Callable[[], FeatureStore]
) -> None:
    """Two rows for one entity and time: the later ingested wins, every time."""
    (feature_project / "data" / "customers-2.csv").write_text(
        "customer_id,updated_at,plan,charges\nc3,2026-01-02 12:00:00,premium,99.0\n"
    )
    ingest(feature_project)
    for _ in range(2):
        frame = open_store().training_set(_labels(("c3", "2026-01-03 00:00")), "ts").frame
        assert _row(frame, 0)["plan"] == "premium"


def test_label_order_and_columns_are_kept(open_store: Callable[[], FeatureStore]) -> None:
    """The training set is the labels, in order, plus one column per feature."""
    labels = _labels(("c2", "2026-01-05"), ("c1", "2026-01-02"), ("c3", "2026-01-04"))
    frame = open_store().training_set(labels, "ts").frame
    assert frame["customer_id"].tolist() == ["c2", "c1", "c3"]
    assert {"plan", "charges", "tickets_3d", "spend_2d", "max_amount_2d", "spend_ratio"} <= set(
        frame.columns
    )


def test_missing_label_columns_are_named(open_store: Callable[[], FeatureStore]) -> None:
    """Labels without the entity column get a clear error."""
    labels = pd.DataFrame({"who": ["c1"], "ts": [datetime(2026, 1, 2)]})
    with pytest.raises(FeatureError, match="no column 'customer_id'"):
        open_store().training_set(labels, "ts")


def test_snapshots_are_cached(open_store: Callable[[], FeatureStore]) -> None:
    """The same view, inputs and time give the same stored snapshot."""
    store = open_store()
    view = store.features.view("activity")
    first = store.offline.snapshot(view, datetime(2026, 1, 6, 13))
    second = store.offline.snapshot(view, datetime(2026, 1, 6, 17))
    assert first == second  # both floor to 01-06 00:00


def test_a_quote_in_the_project_path_is_harmless(tmp_path: Path) -> None:
    """File paths reach DuckDB as escaped literals, so a folder like o'brien works."""
    from keel.project import Project

    from .conftest import write_project

    root = write_project(tmp_path / "o'brien")
    ingest(root)
    with Project.open(root) as project:
        store = FeatureStore.open(project)
        try:
            frame = store.training_set(_labels(("c1", "2026-01-04 10:00")), "ts")
        finally:
            store.close()
    assert frame.frame["tickets_3d"].tolist() == [2]


def test_the_entity_option_renames_the_labels_key(feature_project: Path, tmp_path: Path) -> None:
    """`build-training-set --entity who` joins labels whose key column is named otherwise."""
    from tests.helpers import keel

    labels = tmp_path / "labels.csv"
    labels.write_text("who,ts\nc1,2026-01-04 10:00:00\n")
    out = tmp_path / "set.csv"
    done = keel(
        "features", "build-training-set", "--labels", str(labels), "--out", str(out),
        "--timestamp", "ts", "--entity", "who", "--project", str(feature_project),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert pd.read_csv(out)["tickets_3d"].tolist() == [2]  # as in the aggregation test above
