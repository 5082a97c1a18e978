"""Warnings are visible at publish time: the run's line and `keel ingest --json` name every
failed warn-level check with its failing row count. Counts are computed with pandas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.data.catalog import Catalog
from keel.data.ingestion import ingest
from keel.data.model import Finding, Report
from keel.data.report import warning_line
from keel.project import Project
from tests.data.conftest import write_config
from tests.helpers import keel

REFERENCE = "reference:customer_id->customers.customer_id"
SOURCES = {
    "customers": {"kind": "csv", "path": "data/customers*.csv", "key": "customer_id"},
    "events": {
        "kind": "csv",
        "path": "data/events*.csv",
        "checks": {
            "columns": {"amount": {"type": "float", "not_null": True, "severity": "warn"}},
            "references": [
                {"column": "customer_id", "to": "customers.customer_id", "severity": "warn"}
            ],
            "extra_columns": "ignore",
        },
    },
}


def _customers(ids: range) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"c_{i:05d}" for i in ids], "age": 30})


def _events(rows: int, customers: int, seed: int) -> pd.DataFrame:
    """Events on customers 0..customers-1, with some unknown customers and null amounts."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, customers, rows)
    amount = rng.normal(20, 5, rows).round(2)
    return pd.DataFrame({
        "customer_id": [f"c_{i:05d}" for i in ids],
        "amount": np.where(rng.random(rows) < 0.1, np.nan, amount),
    })  # fmt: skip


def _project(root: Path, store_url: str | None = None) -> Path:
    (root / "data").mkdir(parents=True)
    write_config(root, SOURCES, store_url)
    _customers(range(1000)).to_csv(root / "data" / "customers.csv", index=False)
    _customers(range(1000, 1500)).to_csv(root / "data" / "customers-2.csv", index=False)
    return root


def _published_customers(root: Path) -> pd.Series:
    files = sorted((root / "data").glob("customers*.csv"))
    return pd.concat([pd.read_csv(f) for f in files])["customer_id"]


@pytest.fixture
def two_customer_versions(tmp_path: Path, store_url: str) -> Path:
    """Customers published as two versions (1,000 then 500 more); events not yet sent."""
    root = _project(tmp_path / "project", store_url)
    (root / "data" / "customers-2.csv").rename(root / "later.csv")
    with Project.open(root) as project:
        assert ingest(project, "customers")[0].status == "published"
        (root / "later.csv").rename(root / "data" / "customers-2.csv")
        assert ingest(project, "customers")[0].status == "published"
        assert len(Catalog(project.store).versions("customers")) == 2
    return root


def test_publish_line_names_warnings_with_row_counts(two_customer_versions: Path) -> None:
    """A batch with orphan keys and null amounts publishes; its line counts both, in rows."""
    root = two_customer_versions
    events = _events(5000, 2500, seed=1)
    events.to_csv(root / "data" / "events.csv", index=False)
    orphans = int((~events["customer_id"].isin(_published_customers(root))).sum())
    nulls = int(events["amount"].isna().sum())
    with Project.open(root) as project:
        run = ingest(project, "events")[0]
    assert run.status == "published"
    assert run.message.endswith(
        f" with 2 warnings: amount.not_null {nulls:,} rows; {REFERENCE} {orphans:,} rows"
    )
    assert orphans > 1000 and nulls > 100  # the figures shown with thousands separators


def test_references_leave_out_retired_versions(two_customer_versions: Path) -> None:
    """After the newest customers version is retired, its keys count as orphans."""
    root = two_customer_versions
    events = _events(3000, 1500, seed=2).dropna()
    events.to_csv(root / "data" / "events.csv", index=False)
    retired = pd.read_csv(root / "data" / "customers-2.csv")["customer_id"]
    with Project.open(root) as project:
        catalog = Catalog(project.store)
        catalog.retire(catalog.versions("customers")[1].id, "ages were wrong")
        run = ingest(project, "events")[0]
    assert run.report is not None
    reference = next(f for f in run.report.findings if f.check == REFERENCE)
    orphans = int(events["customer_id"].isin(retired).sum())
    assert reference.rows == reference.violations == orphans


def test_references_pass_when_keys_are_in_an_older_version(two_customer_versions: Path) -> None:
    """Events on customers of both versions have no orphans (not only the latest's keys)."""
    root = two_customer_versions
    _events(2000, 1500, seed=3).dropna().to_csv(root / "data" / "events.csv", index=False)
    with Project.open(root) as project:
        run = ingest(project, "events")[0]
    assert run.report is not None
    reference = next(f for f in run.report.findings if f.check == REFERENCE)
    assert (reference.status, reference.rows) == ("pass", 0)
    assert " with " not in run.message


def test_ingest_json_carries_warnings_for_every_run(tmp_path: Path) -> None:
    """keel ingest --json (a real process) lists each run's warnings: check, severity, rows."""
    root = _project(tmp_path / "project")
    events = _events(4000, 1700, seed=4)
    events.to_csv(root / "data" / "events.csv", index=False)
    result = keel("ingest", "--json", "-p", str(root))
    assert result.returncode == 0, result.stderr
    runs = {run["source"]: run for run in json.loads(result.stdout)["runs"]}
    assert runs["customers"]["warnings"] == []
    got = {w["check"]: (w["severity"], w["rows"]) for w in runs["events"]["warnings"]}
    orphans = int((~events["customer_id"].isin(_published_customers(root))).sum())
    assert got == {
        "amount.not_null": ("warn", int(events["amount"].isna().sum())),
        REFERENCE: ("warn", orphans),
    }


def test_max_null_rate_warning_counts_null_rows(tmp_path: Path) -> None:
    """A max_null_rate warning reports the column's null rows; the terminal line shows them."""
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    column = {"max_null_rate": 0.05, "severity": "warn"}
    source = {"kind": "csv", "path": "data/x.csv", "checks": {"columns": {"v": column}}}
    write_config(root, {"x": source})
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"v": np.where(rng.random(2500) < 0.3, np.nan, 1.0)})
    frame.to_csv(root / "data" / "x.csv", index=False)
    result = CliRunner().invoke(app, ["ingest", "-p", str(root)])
    assert result.exit_code == 0
    nulls = int(frame["v"].isna().sum())
    assert f"with 1 warning: v.max_null_rate {nulls:,} rows" in " ".join(result.stdout.split())


def test_warnings_not_counted_in_rows_are_named_alone() -> None:
    """A warning about columns has no row count; past five warnings the rest are counted."""
    columns = Finding("schema:extra_columns", "extra_columns", "warn", "fail", "x", violations=2)
    rows = [Finding(f"c{i}.not_null", "not_null", "warn", "fail", "x", rows=i) for i in range(6)]
    line = warning_line(Report("s", 10, (columns, *rows)))
    assert line == (
        " with 7 warnings: schema:extra_columns; c0.not_null 0 rows; c1.not_null 1 rows; "
        "c2.not_null 2 rows; c3.not_null 3 rows; and 2 more"
    )
