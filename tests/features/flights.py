"""A flights-shaped project: weather by airport, delays by carrier, fares by both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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


def build_flights(root: Path) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Write and ingest the project at ``root``; return its sources and its labels."""
    rng = np.random.default_rng(7)
    sources = _sources(rng)
    _write(root, sources)
    ingest(root)
    return sources, _labels(rng, sources)


def asof(
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


def daily_mean_delay(departures: pd.DataFrame) -> pd.DataFrame:
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
