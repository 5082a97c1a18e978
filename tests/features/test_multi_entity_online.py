"""The online side with views keyed by different entities and by a composite key.

Materialization, lookups (the store's, the CLI's and the server's) and the skew check on
the flights project; expected values come from pandas ``merge_asof`` per view, by its key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.features import FeatureStore
from keel.project import Project
from keel.serving.features import FeatureClient, FeatureLookup
from tests.helpers import keel

from .flights import AIRPORTS, CARRIERS, START, asof, build_flights, daily_mean_delay

AT = (START + pd.Timedelta(days=5, hours=13)).to_pydatetime()


@pytest.fixture(scope="module")
def flights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The flights project, ingested and materialized at AT."""
    root = tmp_path_factory.mktemp("flights-online") / "project"
    sources, _ = build_flights(root)
    with Project.open(root) as project:
        store = FeatureStore.open(project)
        try:
            store.materialize(AT)
        finally:
            store.close()
    return root, sources


@pytest.fixture
def store(flights: tuple[Path, dict]) -> Iterator[FeatureStore]:
    """The flights project's feature store, open."""
    with Project.open(flights[0]) as project:
        opened = FeatureStore.open(project)
        try:
            yield opened
        finally:
            opened.close()


def _expected(sources: dict, rows: pd.DataFrame) -> pd.DataFrame:
    """Each view's value at AT for each (origin, carrier) row, by pandas."""
    labels = rows.assign(dep_time=pd.Timestamp(AT))
    weather = asof(labels, sources["weather"], ["origin"], "obs_time", pd.Timedelta(hours=6))
    delays = daily_mean_delay(sources["departures"])
    delay = asof(labels, delays, ["carrier"], "grid_ts", pd.Timedelta(days=1))
    fares = asof(labels, sources["fares"], ["origin", "carrier"], "updated_at", None)
    return pd.DataFrame(
        {"temp": weather["temp"], "delay_2d": delay["delay_2d"], "fare": fares["fare"]}
    )


def _pairs() -> pd.DataFrame:
    return pd.DataFrame(list(product(AIRPORTS, CARRIERS)), columns=["origin", "carrier"])


def _assert_served(served: list[dict], expected: pd.DataFrame) -> None:
    for name in expected.columns:
        got = pd.Series([row[name] for row in served], dtype="float64")
        assert got.isna().tolist() == expected[name].isna().tolist(), name
        present = expected[name].notna().to_numpy()
        np.testing.assert_allclose(got[present], expected[name][present])


def test_lookup_serves_each_view_by_its_own_key(
    store: FeatureStore, flights: tuple[Path, dict]
) -> None:
    """Every airport x carrier row gets its airport's weather, its carrier's delay and its
    route's fare, as pandas computes them."""
    pairs = _pairs()
    found = store.lookup(pairs.to_dict("records"), AT)
    _assert_served([f.values for f in found], _expected(flights[1], pairs))
    assert sum(f.values["fare"] is not None for f in found) >= 6


def test_the_server_lookup_completes_rows_with_a_composite_key(
    store: FeatureStore, flights: tuple[Path, dict]
) -> None:
    """The model server's lookup (FeatureLookup) serves the route's fare by both key columns.

    It looks up at the current time, when the March weather and delays are long stale and
    served as null; fares have no TTL, so the one materialized at AT is served."""
    pairs = _pairs()
    client = FeatureClient(store)
    try:
        completed = asyncio.run(
            FeatureLookup(_NoModel(), client).complete(pairs.to_dict("records"))
        )
    finally:
        client._thread.stop()
    assert set(client.entities) == {"origin", "carrier", "gate_id"}
    _assert_served(completed, _expected(flights[1], pairs)[["fare"]])
    assert all(row["temp"] is None and row["delay_2d"] is None for row in completed)


class _NoModel:
    version = "none"


def test_the_skew_check_samples_every_views_entities(store: FeatureStore) -> None:
    """Each view is checked on its own entities: airports, carriers, routes, gates."""
    samples = store.sample_entities(100, AT)
    report = store.check(samples, AT)
    assert report.ok, report.mismatches
    assert sorted(samples["weather"]) == AIRPORTS
    assert sorted(samples["carrier_delays"]) == CARRIERS
    assert {json.loads(e)[1] for e in samples["fares"]} <= set(CARRIERS)
    assert report.views["fares"] == len(samples["fares"]) > 1


def test_the_skew_check_reports_per_view(tmp_path: Path) -> None:
    """With one view's online rows gone, only that view disagrees in the report."""
    build_flights(tmp_path / "project")
    with Project.open(tmp_path / "project") as project:
        store = FeatureStore.open(project)
        try:
            store.materialize(AT)
            store.online.clear("fares")
            report = store.check(store.sample_entities(100, AT), AT).by_view()
        finally:
            store.close()
    assert report["fares"]["mismatched"] == report["fares"]["checked"] > 1
    assert report["fares"]["features"] == ["fare"]
    assert all(report[v]["mismatched"] == 0 for v in ("weather", "carrier_delays", "gates"))


def test_keel_features_get_takes_each_key_column(
    flights: tuple[Path, dict],
) -> None:
    """`keel features get origin=JFK carrier=AA` serves all three views for that row."""
    root, sources = flights
    done = keel(
        "features", "get", "origin=JFK", "carrier=AA", "--at", AT.strftime("%Y-%m-%dT%H:%M:%S"),
        "--json", "--project", str(root),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["keys"] == {"origin": "JFK", "carrier": "AA"}
    pair = pd.DataFrame({"origin": ["JFK"], "carrier": ["AA"]})
    _assert_served([data["features"]], _expected(sources, pair))


def test_keel_features_get_refuses_an_unknown_key_column(flights: tuple[Path, dict]) -> None:
    """A COLUMN=VALUE naming no key column is one sentence and exit 1."""
    done = keel("features", "get", "airport=JFK", "--project", str(flights[0]))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "COLUMN=VALUE for the key columns (origin, carrier, gate_id)" in done.stderr


def test_keel_features_check_reports_each_view(flights: tuple[Path, dict]) -> None:
    """`keel features check --json` lists every view with the entities it compared."""
    at = AT.strftime("%Y-%m-%dT%H:%M:%S")
    done = keel("features", "check", "--at", at, "--json", "--project", str(flights[0]))
    assert done.returncode == 0, done.stderr
    views = json.loads(done.stdout)["views"]
    assert views["weather"] == {"checked": 3, "mismatched": 0, "features": []}
    assert views["carrier_delays"]["checked"] == 4 and views["gates"]["checked"] == 2
