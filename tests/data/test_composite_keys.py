"""Composite keys: a source keyed by several columns (a flight is carrier + flight + date).

Every count asserted here is computed with pandas from the frames the test writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.data.access import read_published
from keel.data.catalog import Catalog
from keel.data.ingestion import ingest
from keel.data.model import Finding, Run
from keel.project import Project
from tests.data.conftest import write_config
from tests.helpers import keel

KEY = ["carrier", "flight", "date"]
UNIQUE, HISTORY = "carrier+flight+date.unique", "carrier+flight+date.unique_history"


def _flights(rows: int, seed: int) -> pd.DataFrame:
    """Flights with distinct (carrier, flight, date) keys; each column alone repeats."""
    rng = np.random.default_rng(seed)
    keys = pd.MultiIndex.from_product(
        [["AA", "BA", "LH"], [100 + seed * 10 + i for i in range(10)],
         [f"2026-01-{d:02d}" for d in range(1, 11)]], names=KEY,
    ).to_frame(index=False)  # fmt: skip
    chosen = keys.sample(rows, random_state=seed).reset_index(drop=True)
    return chosen.assign(delay=rng.normal(10, 5, rows).round(1))


def _project(root: Path, policy: str, store_url: str | None = None) -> Path:
    (root / "data").mkdir(parents=True)
    source = {"kind": "csv", "path": "data/*.csv", "key": KEY, "key_policy": policy,
              "checks": {"columns": {"delay": {"type": "float"}}}}  # fmt: skip
    write_config(root, {"flights": source}, store_url)
    return root


def _send(project: Project, frame: pd.DataFrame, name: str) -> Run:
    frame.to_csv(project.root / "data" / name, index=False)
    return ingest(project, "flights")[0]


def _finding(run: Run, check: str) -> Finding:
    assert run.report is not None
    return next(f for f in run.report.findings if f.check == check)


def _seen(batch: pd.DataFrame, before: pd.DataFrame) -> pd.Series:
    """Whether each row of ``batch`` repeats a whole key of ``before`` (pandas merge)."""
    known = before[KEY].drop_duplicates().assign(_seen=True)
    merged = batch[KEY].merge(known, on=KEY, how="left")
    return merged["_seen"].fillna(False).astype(bool)


@pytest.mark.parametrize("policy", ["reject", "warn", "upsert"])
def test_repeats_within_a_batch_are_counted_on_the_whole_key(
    tmp_path: Path, store_url: str, policy: str
) -> None:
    """Rows repeating all three key columns fail carrier+flight+date.unique under every
    policy; rows sharing only some of the columns do not count."""
    root = _project(tmp_path / "flights", policy, store_url)
    flights = _flights(120, seed=1)
    batch = pd.concat([flights, flights.iloc[:9], flights.iloc[:4]], ignore_index=True)
    repeats = int(batch.duplicated(subset=KEY).sum())
    with Project.open(root) as project:
        run = _send(project, batch, "a.csv")
    unique = _finding(run, UNIQUE)
    assert (unique.status, unique.severity, unique.violations) == ("fail", "error", repeats)
    assert repeats == 13 and run.status == "quarantined"
    holding = batch[batch.duplicated(subset=KEY, keep=False)]
    repeated = {(c, int(f), d) for c, f, d in holding[KEY].itertuples(index=False)}
    shown = [(e["carrier"], e["flight"], str(e["date"])[:10]) for e in unique.examples]
    assert set(shown) <= repeated and len(shown) == min(20, len(holding))


@pytest.mark.parametrize("policy", ["reject", "warn", "upsert"])
def test_keys_sent_again_across_batches_under_each_policy(
    tmp_path: Path, store_url: str, policy: str
) -> None:
    """A second batch re-sending published flights: reject quarantines, warn publishes
    with a warning counting them, upsert publishes counting new and updated keys. A flight
    on a new date (same carrier and number) is a new key."""
    root = _project(tmp_path / "flights", policy, store_url)
    first = _flights(150, seed=2)
    once = first.drop_duplicates(["carrier", "flight"])
    moved = once.iloc[:20].assign(date="2026-02-01")  # same carrier+flight, new date
    batch = pd.concat([first.iloc[100:], moved, _flights(30, seed=3)], ignore_index=True)
    seen = _seen(batch, first)
    with Project.open(root) as project:
        assert _send(project, first, "a.csv").status == "published"
        run = _send(project, batch, "b.csv")
    finding = _finding(run, HISTORY)
    expected = {"reject": ("quarantined", "error", "fail"), "warn": ("published", "warn", "fail"),
                "upsert": ("published", "info", "pass")}  # fmt: skip
    assert (run.status, finding.severity, finding.status) == expected[policy], run.message
    if policy == "upsert":
        new = len(batch[~seen.to_numpy()][KEY].drop_duplicates())
        updated = len(batch[seen.to_numpy()][KEY].drop_duplicates())
        assert finding.message == f"{new} new keys, {updated} updated keys"
    else:
        assert finding.violations == int(seen.sum()) == 50
        assert f"({batch[seen.to_numpy()][KEY].drop_duplicates().shape[0]} keys" in finding.message


def test_upsert_read_keeps_the_newest_row_of_each_composite_key(
    tmp_path: Path, store_url: str
) -> None:
    """Reading an upserting source keeps the last row of each (carrier, flight, date),
    as pandas drop_duplicates(keep="last") over the batches in order does."""
    root = _project(tmp_path / "flights", "upsert", store_url)
    first = _flights(150, seed=4)
    updates = first.sample(40, random_state=9).assign(delay=lambda f: f["delay"] + 100)
    moved = first.drop_duplicates(["carrier", "flight"]).iloc[:15]
    moved = moved.assign(date="2026-03-01", delay=-1.0)
    second = pd.concat([updates, moved], ignore_index=True)
    with Project.open(root) as project:
        _send(project, first, "a.csv")
        assert _send(project, second, "b.csv").status == "published"
        frame = read_published(project, "flights").frame
    both = pd.concat([first, second], ignore_index=True)
    expected = both.drop_duplicates(subset=KEY, keep="last").sort_values(KEY)
    got = frame.sort_values(KEY)
    assert len(got) == len(expected) == 165
    assert got["delay"].tolist() == expected["delay"].tolist()


def test_a_missing_key_column_is_one_sentence_naming_it(tmp_path: Path, store_url: str) -> None:
    """A batch without one of the key's columns is quarantined by one finding naming the
    column and the key it belongs to."""
    root = _project(tmp_path / "flights", "reject", store_url)
    with Project.open(root) as project:
        run = _send(project, _flights(50, seed=5).drop(columns="date"), "a.csv")
    finding = _finding(run, "date.missing")
    assert run.status == "quarantined" and finding.blocking
    assert finding.message == (
        "key column 'date' of the key carrier+flight+date is missing from the batch; "
        "add it or change key:"
    )


def test_the_key_index_holds_each_composite_key_once(tmp_path: Path, store_url: str) -> None:
    """A published version's key index holds the batch's distinct composite keys, and the
    next batch is compared with it even when the full version's blob is damaged."""
    import duckdb

    root = _project(tmp_path / "flights", "reject", store_url)
    first = _flights(120, seed=6)
    with Project.open(root) as project:
        _send(project, first, "a.csv")
        version = Catalog(project.store).versions("flights")[0]
        index = version.lineage["key_index"]
        path = project.artifacts.local_path(index["artifact"])
        stored = duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").df()
        blob = project.artifacts.local_path(version.artifact)
        blob.chmod(0o644)
        blob.write_bytes(b"damaged")
        run = _send(project, first.iloc[:25], "b.csv")
    assert index["columns"] == KEY
    assert len(stored) == len(first[KEY].drop_duplicates()) and list(stored.columns) == KEY
    assert (run.status, _finding(run, HISTORY).violations) == ("quarantined", 25)


def test_a_single_key_in_a_list_is_the_single_key(tmp_path: Path) -> None:
    """key: [order_id] names its checks as key: order_id does (order_id.unique)."""
    root = tmp_path / "orders"
    (root / "data").mkdir(parents=True)
    write_config(root, {"orders": {"kind": "csv", "path": "data/*.csv", "key": ["order_id"]}})
    frame = pd.DataFrame({"order_id": [1, 2, 2, 3], "amount": [1.0, 2.0, 3.0, 4.0]})
    frame.to_csv(root / "data" / "a.csv", index=False)
    with Project.open(root) as project:
        run = ingest(project, "orders")[0]
    assert _finding(run, "order_id.unique").violations == int(frame.duplicated("order_id").sum())


def test_a_key_repeating_a_column_is_one_sentence(tmp_path: Path) -> None:
    """key: [carrier, carrier] stops the real command with one line naming the setting."""
    root = tmp_path / "flights"
    (root / "data").mkdir(parents=True)
    key = ["carrier", "carrier"]
    write_config(root, {"flights": {"kind": "csv", "path": "data/*.csv", "key": key}})
    done = keel("data", "list", "--project", str(root))
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0
    assert "sources.flights.key: key columns must differ; repeated: carrier" in done.stderr
