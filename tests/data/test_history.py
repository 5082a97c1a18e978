"""Keys across history: a source's key against its live versions, under each key_policy.

Every count asserted here is computed with pandas from the files the test writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.data.catalog import Catalog
from keel.data.ingestion import ingest
from keel.data.model import Finding, Run
from keel.project import Project
from tests.data.conftest import write_config
from tests.helpers import keel

CHECK = "order_id.unique_history"


def _orders(ids: list[int], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"order_id": [f"o_{i:05d}" for i in ids],
                         "amount": rng.normal(50, 10, len(ids)).round(2)})  # fmt: skip


def _project(root: Path, policy: str, store_url: str | None = None) -> Path:
    (root / "data").mkdir(parents=True)
    source = {"kind": "csv", "path": "data/*.csv", "key": "order_id", "key_policy": policy,
              "checks": {"columns": {"amount": {"type": "float"}}}}  # fmt: skip
    write_config(root, {"orders": source}, store_url)
    _orders(list(range(200)), seed=1).to_csv(root / "data" / "a.csv", index=False)
    return root


def _send(project: Project, frame: pd.DataFrame, name: str) -> Run:
    frame.to_csv(project.root / "data" / name, index=False)
    return ingest(project, "orders")[0]


def _finding(run: Run) -> Finding:
    assert run.report is not None
    return next(f for f in run.report.findings if f.check == CHECK)


@pytest.fixture
def published(tmp_path: Path, store_url: str) -> Path:
    """An orders project (key_policy: reject) whose first file, 200 orders, is published."""
    root = _project(tmp_path / "orders", "reject", store_url)
    with Project.open(root) as project:
        assert ingest(project, "orders")[0].status == "published"
    return root


def test_first_batch_has_no_history_to_compare(published: Path) -> None:
    """The first version's report skips the history check: there is nothing before it."""
    with Project.open(published) as project:
        run = Catalog(project.store).runs("orders")[0]
    assert _finding(run).status == "skip"


def test_resent_rows_are_quarantined_under_reject(published: Path) -> None:
    """A file re-sending published rows is quarantined, counting them and naming keys."""
    first = pd.read_csv(published / "data" / "a.csv")
    resent = pd.concat([first.sample(50, random_state=3), _orders(list(range(500, 530)), 2)])
    again = resent["order_id"].isin(first["order_id"])
    with Project.open(published) as project:
        run = _send(project, resent, "b.csv")
        versions = Catalog(project.store).versions("orders")
    finding = _finding(run)
    assert run.status == "quarantined" and finding.blocking
    assert finding.violations == int(again.sum()) == 50
    assert f"{int(again.sum())} rows have keys already published" in finding.message
    assert {e["order_id"] for e in finding.examples} <= set(resent["order_id"][again])
    assert len(finding.examples) == 20 and len(versions) == 1


def test_duplicates_within_and_across_batches_count_apart(published: Path) -> None:
    """Repeats inside the batch count under .unique, repeats of history under .unique_history."""
    first = pd.read_csv(published / "data" / "a.csv")
    old, new = first.iloc[:40], _orders(list(range(300, 360)), 4)
    batch = pd.concat([old, old.iloc[:7], new, new.iloc[:11]], ignore_index=True)
    within = len(batch) - batch["order_id"].nunique()
    across = batch["order_id"].isin(first["order_id"])
    with Project.open(published) as project:
        run = _send(project, batch, "b.csv")
    assert run.report is not None
    unique = next(f for f in run.report.findings if f.check == "order_id.unique")
    history = _finding(run)
    assert unique.violations == within == 18
    assert history.violations == int(across.sum()) == 47
    assert f"({batch['order_id'][across].nunique()} keys" in history.message
    assert run.status == "quarantined"


def test_keys_of_a_retired_version_are_not_history(published: Path) -> None:
    """After the version holding them is retired, the same keys publish under reject."""
    first = pd.read_csv(published / "data" / "a.csv")
    with Project.open(published) as project:
        assert _send(project, _orders(list(range(300, 350)), 8), "b.csv").status == "published"
        catalog = Catalog(project.store)
        catalog.retire(catalog.versions("orders")[0].id, "amounts were in cents")
        run = _send(project, first.iloc[:50].assign(amount=first["amount"][:50] / 100), "c.csv")
    assert run.status == "published", run.message
    assert _finding(run).status == "pass"  # compared with the live version b only


@pytest.mark.parametrize("policy", ["reject", "warn", "upsert"])
def test_a_resent_file_under_each_policy(tmp_path: Path, policy: str) -> None:
    """50 published rows sent again: reject quarantines, warn and upsert publish."""
    root = _project(tmp_path / "orders", policy)
    first = pd.read_csv(root / "data" / "a.csv")
    resent = first.sample(50, random_state=5)
    with Project.open(root) as project:
        ingest(project, "orders")
        run = _send(project, resent, "resent.csv")
    finding = _finding(run)
    expected = {"reject": ("quarantined", "error", "fail"), "warn": ("published", "warn", "fail"),
                "upsert": ("published", "info", "pass")}  # fmt: skip
    assert (run.status, finding.severity, finding.status) == expected[policy]
    if policy != "upsert":
        assert finding.violations == int(resent["order_id"].isin(first["order_id"]).sum())
    if policy == "warn":
        assert run.message.endswith(f" with 1 warning: {CHECK} {finding.violations} rows")


def test_upsert_counts_new_and_updated_keys(tmp_path: Path) -> None:
    """Under upsert the run says how many keys are new and how many update old ones."""
    root = _project(tmp_path / "orders", "upsert")
    first = pd.read_csv(root / "data" / "a.csv")
    batch = pd.concat([first.iloc[150:], _orders(list(range(200, 233)), 6)], ignore_index=True)
    seen = batch["order_id"].isin(first["order_id"])
    new, updated = batch["order_id"][~seen].nunique(), batch["order_id"][seen].nunique()
    with Project.open(root) as project:
        ingest(project, "orders")
        run = _send(project, batch, "b.csv")
    assert run.status == "published"
    assert _finding(run).message == f"{new} new keys, {updated} updated keys"
    assert run.message.endswith(f"; {new} new keys, {updated} updated keys)")


def test_ingest_json_names_the_history_check(tmp_path: Path) -> None:
    """keel ingest --json (a real process) exits 1 and reports the blocking history check."""
    root = _project(tmp_path / "orders", "reject")
    assert keel("ingest", "-p", str(root)).returncode == 0
    pd.read_csv(root / "data" / "a.csv").iloc[:10].to_csv(root / "data" / "b.csv", index=False)
    result = keel("ingest", "--json", "-p", str(root))
    assert result.returncode == 1
    run = json.loads(result.stdout)["runs"][0]
    blocking = [f for f in run["report"]["findings"] if f["check"] == CHECK]
    assert run["status"] == "quarantined" and blocking[0]["violations"] == 10


def test_a_published_version_keeps_an_index_of_its_keys(published: Path) -> None:
    """The version's key index holds exactly the file's distinct keys, sorted."""
    import duckdb

    keys = pd.read_csv(published / "data" / "a.csv")["order_id"]
    with Project.open(published) as project:
        version = Catalog(project.store).versions("orders")[0]
        index = version.lineage["key_index"]
        path = project.artifacts.local_path(index["artifact"])
        stored = duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").df()
    assert index["column"] == "order_id"
    assert stored["order_id"].tolist() == sorted(keys.unique())


def test_history_reads_the_key_index_not_the_full_version(published: Path) -> None:
    """With the full Parquet blob damaged, the history check still runs off the index."""
    first = pd.read_csv(published / "data" / "a.csv")
    with Project.open(published) as project:
        version = Catalog(project.store).versions("orders")[0]
        blob = project.artifacts.local_path(version.artifact)
        blob.chmod(0o644)
        blob.write_bytes(b"damaged")
        run = _send(project, first.iloc[:25], "b.csv")
    assert (run.status, _finding(run).violations) == ("quarantined", 25)


def test_versions_without_a_key_index_are_read_in_full(published: Path) -> None:
    """A version recorded before key indexes existed is still compared, from its blob."""
    import sqlalchemy as sa

    from keel.data.tables import data_versions

    first = pd.read_csv(published / "data" / "a.csv")
    with Project.open(published) as project:
        version = Catalog(project.store).versions("orders")[0]
        lineage = {k: v for k, v in version.lineage.items() if k != "key_index"}
        with project.store.begin() as connection:
            connection.execute(
                sa.update(data_versions).where(data_versions.c.id == version.id),
                {"lineage": lineage},
            )
        run = _send(project, first.iloc[:30], "b.csv")
    assert (run.status, _finding(run).violations) == ("quarantined", 30)


def test_resending_a_retired_version_says_so(published: Path) -> None:
    """The same rows as a retired version are not published again; the run names why."""
    with Project.open(published) as project:
        catalog = Catalog(project.store)
        catalog.retire(catalog.versions("orders")[0].id, "amounts were in cents")
        (published / "data" / "a.csv").rename(published / "data" / "again.csv")
        run = ingest(project, "orders")[0]
    assert run.status == "already_ingested"
    assert run.message.endswith("(retired: amounts were in cents)")


def test_validate_checks_a_file_against_history(tmp_path: Path) -> None:
    """keel validate exits 1 on a file whose keys a live version already holds."""
    root = _project(tmp_path / "orders", "reject")
    assert keel("ingest", "-p", str(root)).returncode == 0
    resent = tmp_path / "resent.csv"
    pd.read_csv(root / "data" / "a.csv").iloc[:12].to_csv(resent, index=False)
    result = keel("validate", "-s", "orders", "-d", str(resent), "--json", "-p", str(root))
    assert result.returncode == 1
    found = [f for f in json.loads(result.stdout)["findings"] if f["check"] == CHECK]
    assert found[0]["rows"] == 12 and found[0]["severity"] == "error"
