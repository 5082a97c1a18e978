"""A source of many Parquet files: versioned as a manifest, checked partition by partition
(findings name the file and the row), its key unique across partitions, bad files named."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from keel.compute.dask import DaskEngine
from keel.compute.engine import ShuffleEngine
from keel.compute.local import LocalEngine
from keel.data.partitioned import PartitionedReport, check_partitioned, manifest
from keel.data.partitions import resolve_table
from keel.errors import SourceError
from keel.schema import KeelConfig
from tests.compute.conftest import Cluster
from tests.helpers import keel

CONFIG = """\
name: events
sources:
  events:
    kind: parquet
    path: data/events/
    key: id
    checks:
      columns:
        id: {type: int}
        amount: {type: float, range: [0, 100]}
"""


def _events(start: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(start)
    return pd.DataFrame({"id": np.arange(start, start + rows), "amount": rng.uniform(0, 100, rows)})


@pytest.fixture
def events(tmp_path: Path) -> Path:
    """A project whose ``events`` source is three files (ids 0-39, 40-69, 70-99); in b,
    row 7 has an amount out of range; c repeats id 3 (held by a) at its row 10."""
    root = tmp_path / "project"
    folder = root / "data" / "events"
    folder.mkdir(parents=True)
    (root / "keel.yaml").write_text(CONFIG)
    b = _events(40, 30)
    b.loc[7, "amount"] = 250.0
    c = _events(70, 30)
    c.loc[10, "id"] = 3
    for name, frame in (("a", _events(0, 40)), ("b", b), ("c", c)):
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return root


def _check(root: Path, engine: ShuffleEngine | None = None) -> PartitionedReport:
    config = KeelConfig.model_validate(yaml.safe_load((root / "keel.yaml").read_text()))
    table = resolve_table(root, "events", config.sources)
    runner = engine or LocalEngine()
    return check_partitioned(runner, "events", config.sources["events"], table, datetime.now())


def test_the_manifest_names_each_file_by_digest_and_changes_with_a_file(events: Path) -> None:
    """The manifest lists every file's sha256 (as hashlib computes it) and row count; the
    same files give the same version, one changed file another."""
    config = KeelConfig.model_validate({"name": "x", "sources": {}})
    table = resolve_table(events, "data/events", config.sources)
    first = manifest(table)
    files = sorted((events / "data" / "events").glob("*.parquet"))
    assert [p["sha256"] for p in first["partitions"]] == [
        hashlib.sha256(f.read_bytes()).hexdigest() for f in files
    ]
    assert [p["rows"] for p in first["partitions"]] == [len(pd.read_parquet(f)) for f in files]
    assert manifest(table)["sha256"] == first["sha256"]
    _events(0, 41).to_parquet(files[0], index=False)
    assert manifest(table)["sha256"] != first["sha256"]


def test_a_failing_row_is_named_by_partition_and_row(events: Path) -> None:
    """The out-of-range amount is reported against b.parquet, its example at ``_row`` 7."""
    report = _check(events)
    found = [(p.path, f) for p in report.partitions for f in p.findings]
    ranged = [(path, f) for path, f in found if f.check == "amount.range"]
    assert len(ranged) == 1
    path, finding = ranged[0]
    assert path.endswith("b.parquet") and "b.parquet" in finding.message
    assert [example["_row"] for example in finding.examples] == [7]
    assert not report.passed


def test_a_key_repeated_across_partitions_is_found_exactly(events: Path) -> None:
    """id 3 is in a (row 3) and c (row 10): the cross-partition check finds those two
    rows, though no file alone repeats a key."""
    report = _check(events)
    (merged,) = report.merged
    assert merged.status == "fail" and merged.rows == 2
    shown = sorted((Path(e["partition"]).name, e["_row"]) for e in merged.examples)
    assert shown == [("a.parquet", 3), ("c.parquet", 10)]
    assert not [f for p in report.partitions for f in p.findings if f.check == "id.unique"]


def test_the_cluster_finds_what_the_local_engine_finds(events: Path, cluster: Cluster) -> None:
    """On a real two-worker cluster every partition's findings and the merge are the
    local engine's."""
    engine = DaskEngine.connect(cluster.address, 30)
    try:
        remote = _check(events, engine)
    finally:
        engine.close()
    local = _check(events)
    assert [p.findings for p in remote.partitions] == [p.findings for p in local.partitions]
    assert remote.merged == local.merged


def test_a_partition_with_another_schema_is_named(events: Path) -> None:
    """A file whose amount is text is refused, naming the file and the column."""
    folder = events / "data" / "events"
    pd.DataFrame({"id": [500], "amount": ["12.5"]}).to_parquet(folder / "d.parquet", index=False)
    with pytest.raises(SourceError, match=r"d\.parquet has another schema.*amount VARCHAR"):
        _check(events)


def test_an_empty_partition_is_a_named_warning(events: Path) -> None:
    """A file with the schema and no rows is kept in the manifest and warned about."""
    folder = events / "data" / "events"
    _events(0, 0).to_parquet(folder / "e.parquet", index=False)
    report = _check(events)
    empty = [f for p in report.partitions for f in p.findings if f.check == "partition:empty"]
    assert len(empty) == 1 and "e.parquet" in empty[0].message
    assert report.manifest["partitions"][-1]["rows"] == 0


def test_a_corrupt_file_among_many_is_named(events: Path) -> None:
    """Among the good files, one that is not Parquet stops the check with its name."""
    folder = events / "data" / "events"
    for i in range(5):
        _events(200 + 10 * i, 10).to_parquet(folder / f"f{i}.parquet", index=False)
    (folder / "f2.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(SourceError, match=r"f2\.parquet is not a readable Parquet file"):
        _check(events)


def test_cli_stores_the_manifest_and_exits_1_on_errors(events: Path) -> None:
    """``keel data partitions --json`` reports the version, keeps the manifest as an
    artifact under that digest, and exits 1 (b's amount and the repeated id)."""
    done = keel("data", "partitions", "--source", "events", "--json", cwd=events)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    version = report["version"]
    stored = events / ".keel" / "artifacts"
    assert any(version in str(path) for path in stored.rglob("*"))
    assert not report["passed"]


def test_a_unique_column_is_checked_across_partitions(events: Path) -> None:
    """A column declared ``unique: true`` whose value in c (row 5) repeats one in a
    (row 2) is found by the merge, though neither file repeats it."""
    config = (events / "keel.yaml").read_text()
    (events / "keel.yaml").write_text(config.replace("range: [0, 100]}", "unique: true}"))
    folder = events / "data" / "events"
    a, c = pd.read_parquet(folder / "a.parquet"), pd.read_parquet(folder / "c.parquet")
    c.loc[5, "amount"] = a.loc[2, "amount"]
    c.to_parquet(folder / "c.parquet", index=False)
    report = _check(events)
    (found,) = [f for f in report.merged if f.check == "amount.unique_across_partitions"]
    shown = sorted((Path(e["partition"]).name, e["_row"]) for e in found.examples)
    assert shown == [("a.parquet", 2), ("c.parquet", 5)]
