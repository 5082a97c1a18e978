"""``keel ingest`` of a partitioned source: a version that is a manifest of partition
digests, partitions published to the artifact store, unchanged files not read again, and
``keel validate`` / ``keel data`` working on such a version."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.data.catalog import Catalog
from keel.data.ingestion import ingest
from keel.data.model import Run
from keel.project import Project
from tests.s3server import S3Server

CONFIG = """\
name: shop
sources:
  customers:
    kind: csv
    path: data/customers.csv
    key: customer_id
  orders:
    kind: parquet
    path: data/orders/
    partitioned: true
    key: order_id
    checks:
      columns:
        order_id: {type: int}
        customer_id: {type: string}
        amount: {type: float, range: [0, 1000]}
      references: [{column: customer_id, to: customers.customer_id}]
"""


def _orders(start: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(start)
    return pd.DataFrame(
        {
            "order_id": np.arange(start, start + rows),
            "customer_id": [f"c{i}" for i in rng.integers(0, 50, rows)],
            "amount": rng.uniform(0, 1000, rows).round(2),
        }
    )


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A project with 50 customers (published first) and orders in three Parquet files
    (ids 0-99, 100-179, 180-239)."""
    root = tmp_path / "shop"
    folder = root / "data" / "orders"
    folder.mkdir(parents=True)
    (root / "keel.yaml").write_text(CONFIG)
    pd.DataFrame({"customer_id": [f"c{i}" for i in range(50)]}).to_csv(
        root / "data" / "customers.csv", index=False
    )
    for name, (start, rows) in zip("abc", ((0, 100), (100, 80), (180, 60)), strict=True):
        _orders(start, rows).to_parquet(folder / f"{name}.parquet", index=False)
    with Project.open(root) as project:
        (run,) = ingest(project, "customers")
        assert run.status == "published", run.message
    return root


def _ingest(root: Path) -> Run:
    with Project.open(root) as project:
        (run,) = ingest(project, "orders")
    return run


def _manifest(root: Path, run: Run) -> dict[str, Any]:
    assert run.lineage is not None
    (stored,) = (root / ".keel" / "artifacts").rglob(run.lineage["manifest"])
    loaded: dict[str, Any] = orjson.loads(stored.read_bytes())
    return loaded


def _files(root: Path) -> list[Path]:
    return sorted((root / "data" / "orders").glob("*.parquet"))


def test_a_version_is_a_manifest_of_partition_digests(shop: Path) -> None:
    """The published version names a stored manifest listing each file's sha256 (hashlib)
    and rows (pandas); the version's rows are their sum."""
    run = _ingest(shop)
    assert run.status == "published", run.message
    stored = _manifest(shop, run)
    files = _files(shop)
    parts = stored["partitions"]
    assert [p["sha256"] for p in parts] == [
        hashlib.sha256(f.read_bytes()).hexdigest() for f in files
    ]
    assert [p["rows"] for p in parts] == [len(pd.read_parquet(f)) for f in files]
    assert run.rows == 240 and run.lineage is not None and run.lineage["read"] == 3


def test_publish_copies_each_partition_into_the_artifact_store(shop: Path) -> None:
    """Every partition's bytes are in the artifact store under its own digest."""
    _ingest(shop)
    store = shop / ".keel" / "artifacts"
    for file in _files(shop):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        (copy,) = [p for p in store.rglob(digest) if p.is_file()]
        assert copy.read_bytes() == file.read_bytes()


def test_unchanged_partitions_are_not_read_again(shop: Path) -> None:
    """After a first ingest, a.parquet's bytes are replaced by garbage of the same size
    with its old modification time, and c.parquet gets new rows: the next ingest reads
    only c (one of three), so the garbage is never opened and the version publishes."""
    _ingest(shop)
    a, _, c = _files(shop)
    looks = a.stat()
    a.write_bytes(b"\0" * looks.st_size)
    os.utime(a, ns=(looks.st_atime_ns, looks.st_mtime_ns))
    _orders(180, 70).to_parquet(c, index=False)
    second = _ingest(shop)
    assert second.status == "published", second.message
    assert second.lineage is not None and second.lineage["read"] == 1
    assert second.rows == 100 + 80 + 70
    assert "1 of 3 partitions read" in second.message


def test_the_same_files_are_already_ingested(shop: Path) -> None:
    """A second ingest of unchanged files (one touched: new mtime, same bytes) publishes
    nothing and names the version."""
    first = _ingest(shop)
    os.utime(_files(shop)[1])
    again = _ingest(shop)
    assert again.status == "already_ingested" and again.version_id == first.version_id


def test_a_failing_partition_is_quarantined_with_file_and_row(shop: Path) -> None:
    """An unknown customer (b.parquet row 4) and an amount out of range (c.parquet row 2)
    quarantine the version; each finding names its file, each example its row."""
    b, c = _files(shop)[1:]
    frame = pd.read_parquet(b)
    frame.loc[4, "customer_id"] = "nobody"
    frame.to_parquet(b, index=False)
    frame = pd.read_parquet(c)
    frame.loc[2, "amount"] = 5000.0
    frame.to_parquet(c, index=False)
    run = _ingest(shop)
    assert run.status == "quarantined" and run.report is not None
    failing = {f.check: f for f in run.report.failures}
    reference = failing["reference:customer_id->customers.customer_id"]
    assert "b.parquet" in reference.message and [e["_row"] for e in reference.examples] == [4]
    assert "c.parquet" in failing["amount.range"].message
    assert [e["_row"] for e in failing["amount.range"].examples] == [2]


def test_validate_latest_runs_on_the_published_partitions(shop: Path) -> None:
    """``keel validate --latest`` on a manifest version checks its stored partitions with
    the checks as they are now (a tighter range fails rows pandas counts), naming files
    by their original paths."""
    _ingest(shop)
    config = (shop / "keel.yaml").read_text().replace("range: [0, 1000]", "range: [0, 900]")
    (shop / "keel.yaml").write_text(config)
    done = CliRunner().invoke(
        app, ["validate", "--source", "orders", "--latest", "--json", "--project", str(shop)]
    )
    assert done.exit_code == 1, done.stdout
    report = json.loads(done.stdout)
    ranged = [f for f in report["findings"] if f["check"] == "amount.range"]
    whole = pd.concat([pd.read_parquet(f) for f in _files(shop)])
    assert sum(f["violations"] for f in ranged) == int((whole["amount"] > 900).sum())
    assert {f["message"].split(":")[0] for f in ranged} == {
        f"data/orders/{f.name}" for f in _files(shop)
    }


def test_data_show_gives_the_manifest_in_lineage(shop: Path) -> None:
    """``keel data show`` on a manifest version shows its rows, manifest and profile."""
    run = _ingest(shop)
    assert run.version_id is not None
    done = CliRunner().invoke(
        app, ["data", "show", run.version_id[:12], "--json", "--project", str(shop)]
    )
    assert done.exit_code == 0, done.stdout
    shown = json.loads(done.stdout)
    assert shown["lineage"]["manifest"] == (run.lineage or {})["manifest"]
    assert shown["rows"] == 240 and shown["profile"]["rows"] == 240
    with Project.open(shop) as project:
        assert Catalog(project.store).latest("orders") is not None


def test_a_partitioned_source_on_s3_reads_only_changed_objects(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    """Three Parquet objects on a real S3 server ingest as a manifest naming their URLs
    and digests (hashlib); after one object is replaced, the next version reads one."""
    fs = s3_server.filesystem()
    frames = {name: _orders(start, 40) for name, start in (("a", 0), ("b", 40), ("c", 80))}
    for name, frame in frames.items():
        fs.pipe(f"{s3_bucket}/orders/{name}.parquet", frame.to_parquet(index=False))
    root = tmp_path / "s3shop"
    root.mkdir()
    (root / "keel.yaml").write_text(
        f"name: s3shop\nsources:\n  orders:\n    kind: parquet\n"
        f"    path: s3://{s3_bucket}/orders/\n    partitioned: true\n    key: order_id\n"
    )
    first = _ingest(root)
    assert first.status == "published", first.message
    stored = _manifest(root, first)
    assert [p["path"] for p in stored["partitions"]] == [
        f"s3://{s3_bucket}/orders/{name}.parquet" for name in frames
    ]
    assert [p["sha256"] for p in stored["partitions"]] == [
        hashlib.sha256(fs.cat(f"{s3_bucket}/orders/{name}.parquet")).hexdigest() for name in frames
    ]
    fs.pipe(f"{s3_bucket}/orders/b.parquet", _orders(200, 55).to_parquet(index=False))
    second = _ingest(root)
    assert second.status == "published", second.message
    assert (second.lineage or {})["read"] == 1 and second.rows == 40 + 55 + 40


def test_a_source_referencing_a_manifest_version_is_checked_against_its_partitions(
    shop: Path,
) -> None:
    """A plain source whose order_id references the partitioned orders is checked against
    the values in every published partition: of four refunds, the one for order 999 (in
    no file) fails."""
    (shop / "data" / "refunds.csv").write_text("refund,order_id\nr1,5\nr2,150\nr3,239\nr4,999\n")
    config = (shop / "keel.yaml").read_text() + (
        "  refunds:\n    kind: csv\n    path: data/refunds.csv\n"
        "    checks:\n      references: [{column: order_id, to: orders.order_id}]\n"
    )
    (shop / "keel.yaml").write_text(config)
    assert _ingest(shop).status == "published"
    with Project.open(shop) as project:
        (run,) = ingest(project, "refunds")
    assert run.status == "quarantined" and run.report is not None
    (failed,) = run.report.failures
    assert failed.check == "reference:order_id->orders.order_id" and failed.violations == 1
    assert [e["order_id"] for e in failed.examples] == [999]


def _repeat_a_key(root: Path) -> pd.DataFrame:
    """c.parquet row 5 takes a.parquet row 42's order_id; the repeated rows as pandas
    finds them (file name and row of every row whose id another file holds)."""
    a, _, c = _files(root)
    frame = pd.read_parquet(c)
    frame.loc[5, "order_id"] = pd.read_parquet(a).loc[42, "order_id"]
    frame.to_parquet(c, index=False)
    whole = pd.concat(
        [pd.read_parquet(f).assign(file=f.name, row=np.arange(len(pd.read_parquet(f))))
         for f in _files(root)]
    )  # fmt: skip
    files = whole.groupby("order_id")["file"].nunique()
    return whole[whole["order_id"].isin(files[files > 1].index)]


def test_a_key_repeated_across_files_quarantines_the_ingest(shop: Path) -> None:
    """An order_id held by a.parquet (row 42) and c.parquet (row 5), neither file
    repeating it: the ingest's key check across partitions (the key shuffle, in the same
    job as the partitions' checks) counts both rows and names them."""
    repeated = _repeat_a_key(shop)
    run = _ingest(shop)
    assert run.status == "quarantined" and run.report is not None
    (found,) = [f for f in run.report.failures if f.check == "order_id.unique_across_partitions"]
    assert found.violations == len(repeated) == 2
    named = sorted((Path(e["partition"]).name, e["_row"]) for e in found.examples)
    assert named == sorted(zip(repeated["file"], repeated["row"], strict=True))


def test_validate_latest_counts_keys_repeated_across_published_files(shop: Path) -> None:
    """With the key's checks at severity warn, a version whose a.parquet and c.parquet
    share an order_id publishes; ``keel validate --latest`` over its stored partitions
    then counts the rows pandas finds (2) in the key check across partitions."""
    config = (shop / "keel.yaml").read_text()
    (shop / "keel.yaml").write_text(config.replace("{type: int}", "{type: int, severity: warn}"))
    repeated = _repeat_a_key(shop)
    run = _ingest(shop)
    assert run.status == "published", run.message
    done = CliRunner().invoke(
        app, ["validate", "--source", "orders", "--latest", "--json", "--project", str(shop)]
    )
    assert done.exit_code == 0, done.stdout
    report = json.loads(done.stdout)
    (found,) = [f for f in report["findings"] if f["check"] == "order_id.unique_across_partitions"]
    assert found["status"] == "fail" and found["violations"] == len(repeated) == 2


def _frames(value: Any) -> Iterator[pd.DataFrame]:
    """Every DataFrame inside ``value`` (a stored result's fields, dicts, lists, tuples)."""
    if isinstance(value, pd.DataFrame):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _frames(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _frames(inner)


def test_a_reingest_finds_keys_repeated_across_unchanged_files(shop: Path) -> None:
    """a.parquet and c.parquet share an order_id (severity warn, so the version publishes);
    after b.parquet changes, the next ingest checks b only, yet its key check across
    partitions finds the rows pandas finds again in the two unchanged files, and every
    stored partition result holds no table of key values (only findings and summaries)."""
    config = (shop / "keel.yaml").read_text()
    (shop / "keel.yaml").write_text(config.replace("{type: int}", "{type: int, severity: warn}"))
    repeated = _repeat_a_key(shop)
    first = _ingest(shop)
    assert first.status == "published", first.message
    _orders(100, 70).to_parquet(_files(shop)[1], index=False)  # ids 100-169: no clash
    second = _ingest(shop)
    assert second.status == "published" and second.report is not None, second.message
    assert (second.lineage or {})["read"] == 1
    (found,) = [f for f in second.report.failures if f.check == "order_id.unique_across_partitions"]
    assert found.violations == len(repeated) == 2
    named = sorted((Path(e["partition"]).name, e["_row"]) for e in found.examples)
    assert named == sorted(zip(repeated["file"], repeated["row"], strict=True))
    store = shop / ".keel" / "artifacts"
    for part in _manifest(shop, second)["partitions"]:
        (blob,) = [p for p in store.rglob(part["result"]) if p.is_file()]
        result = pickle.loads(blob.read_bytes())
        assert result.path == part["path"] and result.rows == part["rows"]
        assert not [f for f in _frames(vars(result)) if "order_id" in f.columns]
