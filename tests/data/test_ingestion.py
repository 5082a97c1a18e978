"""Ingestion on both metadata stores: publish, idempotency, incremental files, runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.data.batch import Batch
from keel.data.catalog import Catalog
from keel.data.ingestion import Ingestion, ingest, ingestion_order
from keel.errors import LeaseHeld, SourceError
from keel.examples import generate
from keel.project import Project


def test_clean_data_is_published(churn: Project) -> None:
    """Both example sources become data versions with rows, profile and lineage."""
    runs = ingest(churn)
    assert [(r.source, r.status) for r in runs] == [
        ("customers", "published"),
        ("events", "published"),
    ]
    versions = Catalog(churn.store).versions()
    assert {v.source for v in versions} == {"customers", "events"}
    customers = Catalog(churn.store).latest("customers")
    assert customers is not None and customers.rows == 300
    assert customers.lineage["files"][0]["path"] == "data/customers.csv"
    assert customers.profile is not None and customers.profile.column("age") is not None
    assert customers.time_max is not None


def test_second_run_says_already_ingested(churn: Project) -> None:
    """Ingesting the same input again names the same version and adds nothing."""
    first = ingest(churn, "customers")[0]
    second = ingest(churn, "customers")[0]
    assert second.status == "already_ingested"
    assert second.version_id == first.version_id
    assert "already ingested" in second.message
    assert len(Catalog(churn.store).versions("customers")) == 1


def test_only_new_files_are_read(churn: Project, churn_dir: Path) -> None:
    """A new monthly file becomes a version holding only that file's rows."""
    ingest(churn)
    extra = churn_dir / "data" / "events" / "events-2026-01.csv"
    late = churn_dir / "data" / "events" / "events-2026-03.csv"
    late.write_text(extra.read_text().replace("2026-01-", "2026-03-"))
    run = ingest(churn, "events")[0]
    assert run.status == "published"
    version = Catalog(churn.store).latest("events")
    assert version is not None
    assert [f["path"] for f in version.lineage["files"]] == ["data/events/events-2026-03.csv"]


def test_data_version_is_readable_parquet(churn: Project) -> None:
    """The published artifact is Parquet holding exactly the batch's rows."""
    import duckdb

    ingest(churn, "customers")
    version = Catalog(churn.store).latest("customers")
    assert version is not None
    path = churn.artifacts.local_path(version.artifact)
    count = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()
    assert count == [(300,)]


def test_version_id_is_content_derived(churn_sqlite: Path, tmp_path: Path) -> None:
    """Two projects ingesting identical data give the same version id."""
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    (other / "data" / "customers.csv").write_bytes(
        (churn_sqlite / "data/customers.csv").read_bytes()
    )
    (other / "keel.yaml").write_text((churn_sqlite / "keel.yaml").read_text())
    with Project.open(churn_sqlite) as first, Project.open(other) as second:
        ids = {ingest(project, "customers")[0].version_id for project in (first, second)}
    assert len(ids) == 1 and None not in ids


def test_every_run_is_recorded(churn: Project, churn_dir: Path) -> None:
    """Published, repeated and quarantined runs all appear in the run history."""
    ingest(churn, "customers")
    ingest(churn, "customers")
    generate(churn_dir, rows=300, months=2, seed=7, faults=["out_of_range"])
    ingest(churn, "customers")
    statuses = [r.status for r in Catalog(churn.store).runs("customers")]
    assert statuses == ["quarantined", "already_ingested", "published"]


def test_quarantined_run_keeps_report_and_batch(churn: Project, churn_dir: Path) -> None:
    """A refused batch is stored apart with an HTML report naming the failed check."""
    generate(churn_dir, rows=300, months=2, seed=7, faults=["out_of_range"])
    run = ingest(churn, "customers")[0]
    assert run.status == "quarantined"
    assert run.quarantine_artifact is not None and run.report_artifact is not None
    html = churn.artifacts.get_bytes(run.report_artifact).decode()
    assert "age.range" in html and "<html" in html
    assert Catalog(churn.store).versions("customers") == []


def test_lease_keeps_runs_apart(churn: Project) -> None:
    """While another holder has ingest:customers, a second run is refused."""
    with churn.store.leases.hold("ingest:customers", ttl=30), pytest.raises(LeaseHeld):
        ingest(churn, "customers")


def test_unknown_source_is_one_sentence(churn_sqlite: Path) -> None:
    """Asking for a source keel.yaml does not declare names the ones it does."""
    with Project.open(churn_sqlite) as project, pytest.raises(SourceError, match="customers, ev"):
        ingest(project, "orders")


def test_references_are_ingested_first() -> None:
    """A source is ordered after the sources its references point at."""
    from keel.schema import SourceConfig

    events = SourceConfig.model_validate(
        {"kind": "csv", "path": "e", "checks": {"references": [{"column": "c", "to": "cust.id"}]}}
    )
    cust = SourceConfig.model_validate({"kind": "csv", "path": "c"})
    assert ingestion_order({"events": events, "cust": cust}) == ["cust", "events"]


def test_reference_statistics_use_previous_version(churn_sqlite: Path) -> None:
    """With reference: previous, the second batch is compared with the first."""
    from tests.data.conftest import CHURN_SOURCES, write_config

    customers = dict(CHURN_SOURCES["customers"])
    customers["checks"] = {**customers["checks"], "reference": "previous"}  # type: ignore[dict-item]
    write_config(churn_sqlite, {"customers": customers})
    with Project.open(churn_sqlite) as project:
        ingest(project)
        generate(churn_sqlite, rows=600, months=2, seed=8)
        run = Ingestion(project).run("customers")
    assert run.report is not None and run.report.reference is not None
    assert any(f.check == "stats:age.ks" for f in run.report.findings)


def test_no_sources_is_one_sentence(project_dir: Path) -> None:
    """A keel.yaml without sources: says to add the section."""
    with Project.open(project_dir) as project, pytest.raises(SourceError, match="sources:"):
        ingest(project)


class _LeaseStolen(Ingestion):
    """Loses its lease to another holder between writing the blob and publishing."""

    def _store_batch(self, batch: Batch) -> str:
        digest = super()._store_batch(batch)
        leases = self.project.store.leases
        mine = leases.current("ingest:customers")
        assert mine is not None
        leases.release(mine)
        assert leases.acquire("ingest:customers", "intruder", ttl=30) is not None
        return digest


def test_lost_lease_blocks_publish(churn: Project) -> None:
    """A run that lost its lease mid-way publishes nothing and records a failed run."""
    with pytest.raises(LeaseHeld):
        _LeaseStolen(churn).run("customers")
    catalog = Catalog(churn.store)
    assert catalog.versions() == []
    assert [r.status for r in catalog.runs()] == ["failed"]


def test_report_page_is_kept_beside_the_project(churn: Project, churn_dir: Path) -> None:
    """Each validated run leaves its HTML report under .keel/reports, and lineage on the run."""
    generate(churn_dir, rows=300, months=2, seed=7, faults=["out_of_range"])
    run = ingest(churn, "customers")[0]
    page = churn.state_dir / "reports" / f"customers-{run.id[:8]}.html"
    assert "age.range" in page.read_text()
    assert run.lineage is not None and run.lineage["files"][0]["path"] == "data/customers.csv"


def test_read_version_gives_the_rows_back(churn: Project) -> None:
    """A published version reads back as a DataFrame equal to the ingested file."""
    import pandas as pd

    from keel.data import read_version

    ingest(churn, "customers")
    version = Catalog(churn.store).latest("customers")
    assert version is not None
    frame = read_version(churn, version)
    original = pd.read_csv(churn.root / "data" / "customers.csv")
    assert list(frame.columns) == list(original.columns)
    assert frame["customer_id"].tolist() == original["customer_id"].tolist()
