"""Training sets from views keyed by different entities, and by a composite key.

Flights-shaped data: weather by airport (``origin``), a trailing delay average by carrier,
and fares by (``origin``, ``carrier``). Every expected value is computed here with pandas
(``merge_asof`` per view, by its key), never by Keel.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from keel.errors import FeatureError, TrainingDataError
from keel.features import FeatureStore
from keel.project import Project
from keel.schema import TrainingConfig
from keel.training.data import resolve_training_frame
from tests.helpers import keel

from .flights import START, asof, build_flights, daily_mean_delay


@pytest.fixture(scope="module")
def flights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, pd.DataFrame]:
    """The flights project, ingested, with its sources and labels."""
    root = tmp_path_factory.mktemp("flights") / "project"
    sources, labels = build_flights(root)
    return root, sources, labels


def _training_set(root: Path, labels: pd.DataFrame, only: list[str]) -> pd.DataFrame:
    with Project.open(root) as project:
        opened = FeatureStore.open(project)
        store = FeatureStore(project, opened.features.select(only), opened.online)
        try:
            return store.training_set(labels, "dep_time").frame
        finally:
            store.close()


def _assert_same(got: pd.Series, expected: pd.Series) -> None:
    got, expected = got.reset_index(drop=True), expected.reset_index(drop=True)
    assert got.isna().tolist() == expected.isna().tolist()
    present = expected.notna()
    if pd.api.types.is_numeric_dtype(expected):
        np.testing.assert_allclose(got[present].astype(float), expected[present].astype(float))
    else:
        assert got[present].tolist() == expected[present].tolist()


def test_each_view_joins_on_its_own_entity(flights: tuple[Path, dict, pd.DataFrame]) -> None:
    """Weather by airport and delays by carrier match merge_asof by each view's key."""
    root, sources, labels = flights
    frame = _training_set(root, labels, ["weather", "carrier_delays"])
    weather = asof(labels, sources["weather"], ["origin"], "obs_time", pd.Timedelta(hours=6))
    delays = asof(
        labels,
        daily_mean_delay(sources["departures"]),
        ["carrier"],
        "grid_ts",
        pd.Timedelta(days=1),
    )
    assert frame["late"].tolist() == labels["late"].tolist()  # every row, in order
    for name in ("temp", "wind"):
        _assert_same(frame[name], weather[name])
    _assert_same(frame["delay_2d"], delays["delay_2d"])
    assert frame["delay_2d"].notna().sum() > 300  # the second view really joined


def test_a_composite_key_joins_on_all_its_columns(
    flights: tuple[Path, dict, pd.DataFrame],
) -> None:
    """Fares keyed by (origin, carrier) match merge_asof by both columns."""
    root, sources, labels = flights
    frame = _training_set(root, labels, ["fares"])
    expected = asof(labels, sources["fares"], ["origin", "carrier"], "updated_at", None)
    _assert_same(frame["fare"], expected["fare"])
    assert frame["fare"].notna().sum() > 100


def test_a_null_key_gives_nulls_for_its_views_only(
    flights: tuple[Path, dict, pd.DataFrame],
) -> None:
    """Rows without an origin keep their row and their carrier's delay, but no weather."""
    root, _, labels = flights
    frame = _training_set(root, labels, ["weather", "carrier_delays", "fares"])
    no_origin = labels["origin"].isna()
    assert len(frame) == len(labels)
    assert frame.loc[no_origin, "temp"].isna().all()
    assert frame.loc[no_origin, "fare"].isna().all()
    assert frame.loc[no_origin, "weather__missing"].all()
    assert frame.loc[no_origin, "delay_2d"].notna().any()


def test_a_whole_number_key_with_nulls_still_matches(
    flights: tuple[Path, dict, pd.DataFrame],
) -> None:
    """An integer key read next to a blank cell (the float 2.0) matches the source's 2."""
    root, _, _ = flights
    labels = pd.DataFrame(
        {"gate_id": [2.0, np.nan, 1.0], "dep_time": [START + pd.Timedelta(hours=1)] * 3}
    )
    frame = _training_set(root, labels, ["gates"])
    assert frame["zone"].tolist()[0] == "south" and frame["zone"].tolist()[2] == "north"
    assert pd.isna(frame["zone"].tolist()[1])


def test_labels_lacking_a_views_key_are_refused(
    flights: tuple[Path, dict, pd.DataFrame],
) -> None:
    """The error names the view and the missing column, and says what to do."""
    root, _, labels = flights
    with pytest.raises(FeatureError) as caught:
        _training_set(root, labels.drop(columns=["carrier"]), ["weather", "carrier_delays"])
    message = str(caught.value)
    assert "'carrier'" in message and "'carrier_delays'" in message and "add it" in message


def test_the_cli_names_a_missing_key_in_one_sentence(
    flights: tuple[Path, dict, pd.DataFrame], tmp_path: Path
) -> None:
    """`keel features build-training-set` without a view's key: exit 1, one line, no traceback."""
    root, _, labels = flights
    path = tmp_path / "labels.csv"
    labels.drop(columns=["origin"]).to_csv(path, index=False)
    done = keel(
        "features",
        "build-training-set",
        "--labels",
        str(path),
        "--out",
        str(tmp_path / "o.csv"),
        "--timestamp",
        "dep_time",
        "--project",
        str(root),
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "no column 'origin', which feature view 'weather' is keyed by" in done.stderr


TRAINING = """\
training:
  data: features
  labels: {labels}
  label_time: dep_time
  target: late
  exclude: [dep_time]
  model:
    estimator: sklearn.ensemble.HistGradientBoostingClassifier
    params: {{max_iter: 5}}
  split: {{by: random, test_size: 0.25}}
"""


def test_keel_train_learns_from_views_keyed_by_different_entities(
    flights: tuple[Path, dict, pd.DataFrame], tmp_path: Path
) -> None:
    """`keel train` through the feature store with weather by airport and delays by carrier."""
    root, _, labels = flights
    labels.assign(gate_id=1).to_csv(root / "data" / "labels.csv", index=False)
    config = tmp_path / "train.yaml"
    config.write_text(TRAINING.format(labels="data/labels.csv"))
    done = keel("train", "--config", str(config), "--json", "--project", str(root))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"]["data_ref"].startswith("features:")


def test_a_feature_no_label_received_is_named(flights: tuple[Path, dict, pd.DataFrame]) -> None:
    """Labels whose carriers the source never saw: one sentence naming the feature and key."""
    root, _, labels = flights
    labels.assign(carrier="ZZ", gate_id=1).to_csv(root / "data" / "labels_zz.csv", index=False)
    config = TrainingConfig.model_validate(
        yaml.safe_load(TRAINING.format(labels="data/labels_zz.csv"))["training"]
    )
    with pytest.raises(TrainingDataError) as caught:
        resolve_training_frame(root, "features", config)
    message = str(caught.value)
    assert "feature 'delay_2d' of view 'carrier_delays' is null in all 400 label rows" in message
    assert "check the labels' carrier values" in message


def test_entity_option_is_refused_when_views_have_different_keys(
    flights: tuple[Path, dict, pd.DataFrame], tmp_path: Path
) -> None:
    """`--entity` renames one shared key column; with several keys it says what to do."""
    root, _, labels = flights
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    done = keel(
        "features", "build-training-set", "--labels", str(path), "--out", str(tmp_path / "o.csv"),
        "--timestamp", "dep_time", "--entity", "origin", "--project", str(root),
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--entity works only when every view is keyed by the same one column" in done.stderr
