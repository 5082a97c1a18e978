"""A flights-shaped project for bench_features.py: training through the feature store.

The shape of the NYC flights data: ~337k departures from three airports by 16 carriers over
one year, hourly weather per airport, labels (late or not) for ~160k of the departures.
Three views: weather by airport (attributes, TTL 3 h), a 7-day trailing delay average and
count by carrier on an hourly grid, and a 28-day delay average by (airport, carrier) on a
daily grid. ``keel train`` runs in fresh processes, alternately with ``training.data:
features`` and with a CSV and a Parquet file holding the very training frame the feature
store builds; each run's own timings (read, fit, score, total) come from its run record.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SRC = str(Path(__file__).resolve().parents[1] / "src")
CARRIERS = ["UA", "B6", "EV", "DL", "AA", "MQ", "US", "9E", "WN", "VX", "FL", "AS", "F9"]
CARRIERS += ["YV", "HA", "OO"]
SHARES = np.array([58, 54, 51, 48, 32, 26, 20, 18, 12, 5, 3, 0.7, 0.7, 0.6, 0.3, 0.03])
AIRPORTS = ["EWR", "JFK", "LGA"]

CONFIG = """\
name: flights
sources:
  weather: {kind: csv, path: data/weather.csv}
  flights: {kind: csv, path: data/flights.csv}
features:
  module: features.py
"""

FEATURES = """\
from keel.features import Aggregation, FeatureView, request_transform

weather = FeatureView(
    name="weather", source="weather", entity="origin", timestamp="time_hour", ttl="3h",
    features=("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"),
)
carrier_delays = FeatureView(
    name="carrier_delays", source="flights", entity="carrier", timestamp="time_hour",
    every="1h",
    features=(
        Aggregation("carrier_delay_7d", fn="mean", column="dep_delay", window="7d"),
        Aggregation("carrier_flights_7d", fn="count", window="7d"),
    ),
)
route_delays = FeatureView(
    name="route_delays", source="flights", entity=("origin", "carrier"), timestamp="time_hour",
    every="1d",
    features=(
        Aggregation("origin_carrier_delay_28d", fn="mean", column="arr_delay", window="28d"),
    ),
)


@request_transform("temp", "dewp")
def dewpoint_spread(row):
    if row.get("temp") is None or row.get("dewp") is None:
        return None
    return row["temp"] - row["dewp"]
"""

TRAINING = """\
training:
  data: {data}
  labels: data/labels.csv
  label_time: time_hour
  target: late
  exclude: [time_hour]
  model:
    estimator: sklearn.ensemble.HistGradientBoostingClassifier
    params: {{max_iter: 100, early_stopping: false}}
  split: {{by: time, column: time_hour, test_size: 0.2}}
  seed: 1
"""


def weather(rng: np.random.Generator) -> pd.DataFrame:
    hours = pd.date_range("2013-01-01", "2013-12-31 23:00", freq="h")
    frame = pd.DataFrame(
        [(a, h) for a in AIRPORTS for h in hours], columns=["origin", "time_hour"]
    ).sample(frac=0.994, random_state=1)  # the real table misses a few hours
    n, day = len(frame), frame["time_hour"].dt.dayofyear.to_numpy()
    season = np.cos((day - 200) / 365 * 2 * np.pi)
    frame["temp"] = (55 + 22 * season + rng.normal(0, 8, n)).round(2)
    frame["dewp"] = (frame["temp"] - rng.gamma(2, 6, n)).round(2)
    frame["humid"] = rng.uniform(20, 100, n).round(2)
    frame["wind_speed"] = rng.gamma(2, 5, n).round(3)
    frame["precip"] = np.where(rng.random(n) < 0.07, rng.gamma(1, 0.05, n), 0).round(2)
    frame["pressure"] = rng.normal(1017, 7, n).round(1)
    frame["visib"] = np.where(rng.random(n) < 0.1, rng.uniform(0, 10, n), 10).round(2)
    return frame.sort_values("time_hour").reset_index(drop=True)


def flights(rng: np.random.Generator, n: int, sky: pd.DataFrame) -> pd.DataFrame:
    day = pd.Timestamp("2013-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D")
    hour = rng.choice(np.arange(5, 24), n, p=_hour_shares())
    frame = pd.DataFrame(
        {
            "carrier": rng.choice(CARRIERS, n, p=SHARES / SHARES.sum()),
            "origin": rng.choice(AIRPORTS, n, p=[0.36, 0.33, 0.31]),
            "dest": rng.choice([f"D{i:02d}" for i in range(100)], n),
            "time_hour": day + pd.to_timedelta(hour, "h"),
            "hour": hour,
            "month": day.month,
            "distance": rng.integers(80, 4983, n),
        }
    )
    conditions = frame.merge(sky, on=["origin", "time_hour"], how="left")
    bad = conditions["precip"].fillna(0) * 200 + (10 - conditions["visib"].fillna(10)) * 3
    carrier = frame["carrier"].map({c: i % 5 * 3 for i, c in enumerate(CARRIERS)})
    frame["dep_delay"] = (rng.gamma(1.2, 10, n) - 10 + bad + carrier + hour * 0.8).round()
    frame["arr_delay"] = (frame["dep_delay"] + rng.normal(-5, 12, n)).round()
    frame["late"] = (frame["arr_delay"] > 15).astype(int)
    return frame.sort_values("time_hour").reset_index(drop=True)


def _hour_shares() -> np.ndarray:
    shares = np.array([2, 8, 8, 7, 6, 6, 6, 6, 6, 7, 6, 6, 6, 6, 6, 5, 4, 3, 1], dtype=float)
    return shares / shares.sum()


def write_project(root: Path, n_flights: int, n_labels: int) -> None:
    rng = np.random.default_rng(2013)
    sky = weather(rng)
    table = flights(rng, n_flights, sky)
    (root / "data").mkdir(parents=True)
    (root / "keel.yaml").write_text(CONFIG)
    (root / "features.py").write_text(FEATURES)
    sky.to_csv(root / "data" / "weather.csv", index=False)
    table.drop(columns=["late"]).to_csv(root / "data" / "flights.csv", index=False)
    labelled = table.sample(n=n_labels, random_state=3).sort_values("time_hour")
    columns = ["origin", "carrier", "dest", "time_hour", "hour", "month", "distance", "late"]
    labelled[columns].to_csv(root / "data" / "labels.csv", index=False)
    for data in ("features", "data/train.csv", "data/train.parquet"):
        name = data.replace("/", "_").replace(".", "_")
        (root / f"train_{name}.yaml").write_text(TRAINING.format(data=data))


def keel(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    command = [sys.executable, "-m", "keel", *args, "--project", str(root)]
    return subprocess.run(command, check=True, capture_output=True, text=True, env=env)


def prepare(root: Path) -> list[tuple[str, float, float]]:
    """Ingest the sources, build the training frame once (timing each stage, snapshots
    cold), and write that frame as the CSV and Parquet files the other runs train from."""
    sys.path.insert(0, SRC)
    from keel.features import FeatureStore
    from keel.features.io import write_table
    from keel.features.offline import _after
    from keel.features.rows import apply_transforms
    from keel.project import Project
    from keel.training.data import frame_digest, read_table

    keel(root, "ingest")
    stages: list[tuple[str, float, float]] = []
    with _timed(stages, "read the labels (pandas CSV, ISO times)"):
        labels = read_table(root / "data" / "labels.csv")
        labels["time_hour"] = pd.to_datetime(labels["time_hour"], format="ISO8601")
    with Project.open(root) as project:
        store = FeatureStore.open(project)
        offline, until = store.offline, _after(labels["time_hour"].max())
        for view in store.features.views.values():
            with _timed(stages, f"snapshot {view.name} (cold, DuckDB)"):
                offline.snapshot(view, until)
        snapshots = tuple(offline.snapshot(v, until) for v in store.features.views.values())
        keys = offline._check_labels(labels, "time_hour")
        with _timed(stages, "point-in-time join, 3 views (DuckDB -> pandas)"):
            frame = offline._join(labels, "time_hour", keys, snapshots)
        with _timed(stages, "request transform over every row"):
            frame = apply_transforms(frame, store.features.transforms)
        store.close()
    frame = frame.drop(columns=[c for c in frame if str(c).endswith("__missing")])
    with _timed(stages, "digest of the frame"):
        frame_digest(frame)
    frame.to_csv(root / "data" / "train.csv", index=False)
    write_table(frame, root / "data" / "train.parquet")
    for name in ("train.csv", "train.parquet"):
        with _timed(stages, f"read the same frame from {name}"):
            read_table(root / "data" / name)
    nulls = {c: int(frame[c].isna().sum()) for c in frame if "_7d" in c or "_28d" in c}
    print(f"training frame: {frame.shape[0]:,} rows x {frame.shape[1]} columns; nulls {nulls}")
    return stages


@contextmanager
def _timed(stages: list[tuple[str, float, float]], name: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    stages.append((name, time.perf_counter() - wall, time.process_time() - cpu))


def train_once(root: Path, config: str) -> dict[str, float]:
    """One `keel train` in a fresh process: wall and CPU seconds, and its recorded stages."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = keel(root, "train", "--config", str(root / config), "--json")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    version = json.loads(done.stdout)["version"]["version"]
    from keel.project import Project
    from keel.training.registry import Registry

    with Project.open(root) as project:
        record = Registry(project.store).record(version)
    return {"wall": wall, "cpu": cpu, **record["duration_s"]}


def training_table(n_flights: int, n_labels: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "flights"
        started = time.perf_counter()
        write_project(root, n_flights, n_labels)
        stages = prepare(root)
        print(f"project written and ingested, frame built: {time.perf_counter() - started:.1f} s")
        print(f"\n{'where the time goes (in process, one run)':<48}{'wall s':>9}{'cpu s':>9}")
        for name, wall, cpu in stages:
            print(f"{name:<48}{wall:>9.2f}{cpu:>9.2f}")
        configs = {
            "training.data: features": "train_features.yaml",
            "training.data: data/train.csv": "train_data_train_csv.yaml",
            "training.data: data/train.parquet": "train_data_train_parquet.yaml",
        }
        times: dict[str, list[dict[str, float]]] = {label: [] for label in configs}
        for _ in range(runs):  # side by side: one run of each, in turn
            for label, config in configs.items():
                times[label].append(train_once(root, config))
        _print(times, n_labels)


def _print(times: dict[str, list[dict[str, Any]]], n_labels: int) -> None:
    print(f"\nkeel train, {n_labels:,} labels, median of {len(next(iter(times.values())))} runs")
    parts = ("wall", "cpu", "read", "fit", "score", "total")
    print(f"{'':<36}" + "".join(f"{p + ' s':>9}" for p in parts) + f"{'vs csv':>9}")
    base = statistics.median(t["wall"] for t in times["training.data: data/train.csv"])
    for label, runs in times.items():
        medians = [statistics.median(run[p] for run in runs) for p in parts]
        cells = "".join(f"{m:>9.2f}" for m in medians)
        print(f"{label:<36}{cells}{medians[0] / base:>8.2f}x")
    print("wall, cpu: the whole `keel train` process; read, fit, score, total: its run record")
