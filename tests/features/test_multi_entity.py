"""Training sets from views keyed by different entities, and by a composite key.

Flights-shaped data: weather by airport (``origin``), a trailing delay average by carrier,
and fares by (``origin``, ``carrier``). Every expected value is computed here with pandas
(``merge_asof`` per view, by its key), never by Keel.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.errors import FeatureError
from keel.features import FeatureStore
from keel.project import Project
from tests.helpers import keel

from .conftest import ingest

CONFIG = """\
name: flights
sources:
  weather: {kind: csv, path: data/weather.csv}
  departures: {kind: csv, path: data/departures.csv}
  fares: {kind: csv, path: data/fares.csv}
  gates: {kind: csv, path: data/gates.csv}
features:
  module: features.py
"""

FEATURES = """\
from keel.features import Aggregation, FeatureView

weather = FeatureView(
    name="weather", source="weather", entity="origin", timestamp="obs_time",
    features=("temp", "wind"), ttl="6h",
)
carrier_delays = FeatureView(
    name="carrier_delays", source="departures", entity="carrier", timestamp="dep_time",
    every="1d", features=(Aggregation("delay_2d", fn="mean", column="delay", window="2d"),),
)
fares = FeatureView(
    name="fares", source="fares", entity=("origin", "carrier"), timestamp="updated_at",
    features=("fare",),
)
"""

GATES = """\
from keel.features import FeatureView

gates = FeatureView(
    name="gates", source="gates", entity="gate_id", timestamp="updated_at", features=("zone",),
)
"""

START = pd.Timestamp("2026-03-01")
AIRPORTS = ["EWR", "JFK", "LGA"]
CARRIERS = ["AA", "B6", "DL", "UA"]


def _times(rng: np.random.Generator, n: int, days: int) -> pd.Series:
    seconds = rng.choice(days * 86_400, size=n, replace=False)  # unique: no ties to break
    return pd.Series(START + pd.to_timedelta(np.sort(seconds), unit="s"))


def _sources(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    weather = pd.DataFrame(
        {
            "origin": rng.choice(AIRPORTS, 300),
            "obs_time": _times(rng, 300, 10),
            "temp": rng.normal(10, 5, 300).round(2),
            "wind": rng.integers(0, 40, 300),
        }
    )
    departures = pd.DataFrame(
        {
            "carrier": rng.choice(CARRIERS, 400),
            "dep_time": _times(rng, 400, 10),
            "delay": rng.normal(15, 20, 400).round(1),
        }
    )
    fares = pd.DataFrame(
        {
            "origin": rng.choice(AIRPORTS, 60),
            "carrier": rng.choice(CARRIERS, 60),
            "updated_at": _times(rng, 60, 10),
            "fare": rng.uniform(80, 400, 60).round(2),
        }
    )
    return {"weather": weather, "departures": departures, "fares": fares}


def _labels(rng: np.random.Generator, sources: dict[str, pd.DataFrame]) -> pd.DataFrame:
    n = 400
    times = START - pd.Timedelta(days=1) + pd.to_timedelta(rng.integers(0, 12 * 86_400, n), "s")
    labels = pd.DataFrame(
        {
            "origin": rng.choice([*AIRPORTS, "SFO"], n),  # SFO: an airport with no data
            "carrier": rng.choice(CARRIERS, n),
            "dep_time": times,
            "late": rng.integers(0, 2, n),
        }
    )
    exact = sources["weather"].iloc[:20]  # labels exactly at an observation take it
    labels.loc[:19, "origin"] = exact["origin"].to_numpy()
    labels.loc[:19, "dep_time"] = exact["obs_time"].to_numpy()
    labels.loc[20:29, "origin"] = None  # a null key joins nothing for that key's views
    labels.loc[30:34, "carrier"] = None
    return labels


def _write(root: Path, sources: dict[str, pd.DataFrame]) -> None:
    (root / "data").mkdir(parents=True)
    (root / "keel.yaml").write_text(CONFIG)
    (root / "features.py").write_text(FEATURES + GATES)
    for name, frame in sources.items():
        frame.to_csv(root / "data" / f"{name}.csv", index=False)
    gates = pd.DataFrame(
        {"gate_id": [1, 2], "updated_at": [START, START], "zone": ["north", "south"]}
    )
    gates.to_csv(root / "data" / "gates.csv", index=False)


@pytest.fixture(scope="module")
def flights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict, pd.DataFrame]]:
    """The flights project, ingested, with its sources and labels."""
    rng = np.random.default_rng(7)
    sources = _sources(rng)
    root = tmp_path_factory.mktemp("flights") / "project"
    _write(root, sources)
    ingest(root)
    yield root, sources, _labels(rng, sources)


def _training_set(root: Path, labels: pd.DataFrame, only: list[str]) -> pd.DataFrame:
    with Project.open(root) as project:
        opened = FeatureStore.open(project)
        store = FeatureStore(project, opened.features.select(only), opened.online)
        try:
            return store.training_set(labels, "dep_time").frame
        finally:
            store.close()


def _asof(
    labels: pd.DataFrame,
    table: pd.DataFrame,
    by: list[str],
    on: str,
    tolerance: pd.Timedelta | None,
) -> pd.DataFrame:
    """merge_asof per view, by its key, keeping every label row in its order."""
    left = labels.assign(_row=range(len(labels))).dropna(subset=by).sort_values("dep_time")
    right = table.sort_values(on)
    merged = pd.merge_asof(
        left,
        right.drop(columns=[c for c in right if c in left and c not in by]),
        left_on="dep_time",
        right_on=on,
        by=by,
        direction="backward",
        tolerance=tolerance,
    )
    return merged.set_index("_row").reindex(range(len(labels)))


def _daily_mean_delay(departures: pd.DataFrame) -> pd.DataFrame:
    """Each carrier's mean delay over [T - 2d, T) at every midnight T."""
    grid = pd.date_range(START, START + pd.Timedelta(days=12), freq="1D")
    rows = []
    for carrier, events in departures.groupby("carrier"):
        for moment in grid:
            window = events[
                (events["dep_time"] >= moment - pd.Timedelta(days=2))
                & (events["dep_time"] < moment)
            ]
            mean = window["delay"].mean() if len(window) else np.nan
            rows.append({"carrier": carrier, "grid_ts": moment, "delay_2d": mean})
    return pd.DataFrame(rows)


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
    weather = _asof(labels, sources["weather"], ["origin"], "obs_time", pd.Timedelta(hours=6))
    delays = _asof(
        labels,
        _daily_mean_delay(sources["departures"]),
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
    expected = _asof(labels, sources["fares"], ["origin", "carrier"], "updated_at", None)
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
