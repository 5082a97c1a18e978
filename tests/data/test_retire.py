"""Retiring data versions, on both metadata stores: kept for lineage, left out of live."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from keel.data.catalog import Catalog
from keel.data.ingestion import ingest
from keel.errors import DataError, DataVersionNotFound
from keel.project import Project
from keel.store import migrate
from keel.store.metadata import MetadataStore, create_engine


def _two_versions(project: Project, extra_name: str = "events-2026-03.csv") -> list[str]:
    """Publish events twice (a second monthly file) and return both version ids."""
    ingest(project)
    folder = project.root / "data" / "events"
    late = folder / extra_name
    late.write_text((folder / "events-2026-01.csv").read_text().replace("2026-01-", "2026-03-"))
    ingest(project, "events")
    return [v.id for v in Catalog(project.store).versions("events")]


def test_retired_version_keeps_its_row_with_the_reason(churn: Project) -> None:
    """versions(), find() and latest() still return a retired version, reason and time set."""
    ingest(churn, "customers")
    catalog = Catalog(churn.store)
    version = catalog.versions("customers")[0]
    assert version.retired_reason is None and version.retired_at is None
    retired = catalog.retire(version.id, "labels were shifted by a day")
    assert retired.retired_reason == "labels were shifted by a day"
    assert retired.retired_at is not None and not retired.live
    found = catalog.find(version.id)
    latest = catalog.latest("customers")
    listed = catalog.versions("customers")
    assert found is not None and latest is not None
    assert found.retired_reason == latest.retired_reason == listed[0].retired_reason
    assert found.retired_at == retired.retired_at


def test_live_versions_leave_out_retired_ones_oldest_first(churn: Project) -> None:
    """live_versions(source) lists the unretired versions of that source, oldest first."""
    first, second = _two_versions(churn)
    catalog = Catalog(churn.store)
    assert [v.id for v in catalog.live_versions("events")] == [first, second]
    catalog.retire(first, "replayed from a broken export")
    assert [v.id for v in catalog.live_versions("events")] == [second]
    assert [v.id for v in catalog.versions("events")] == [first, second]


def test_retiring_an_unknown_version_is_one_sentence(churn: Project) -> None:
    """An id that names no version is DataVersionNotFound, and nothing changes."""
    with pytest.raises(DataVersionNotFound, match="no data version 0000; see `keel data list`"):
        Catalog(churn.store).retire("0000", "mistake")


def test_retiring_twice_keeps_the_first_reason(churn: Project) -> None:
    """A second retire of the same version is refused and the first reason stays."""
    ingest(churn, "customers")
    catalog = Catalog(churn.store)
    version_id = catalog.versions("customers")[0].id
    first = catalog.retire(version_id, "first reason")
    with pytest.raises(DataError, match=r"already retired \(first reason\)"):
        catalog.retire(version_id, "second reason")
    again = catalog.find(version_id)
    assert again is not None
    assert (again.retired_reason, again.retired_at) == ("first reason", first.retired_at)


@pytest.mark.parametrize("reason", ["", "   "])
def test_retiring_needs_a_reason(churn: Project, reason: str) -> None:
    """An empty or blank reason is refused and the version stays live."""
    ingest(churn, "customers")
    catalog = Catalog(churn.store)
    version_id = catalog.versions("customers")[0].id
    with pytest.raises(DataError, match="needs a reason"):
        catalog.retire(version_id, reason)
    assert [v.id for v in catalog.live_versions("customers")] == [version_id]


def test_a_store_from_before_retirement_upgrades_with_live_versions(store_url: str) -> None:
    """A version recorded by the 0002_data schema reads back live after the upgrade."""
    engine = create_engine(store_url)
    config = migrate._config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002_data")
        row = {"id": "v" * 64, "source": "s", "artifact": "a" * 64, "rows": 1, "schema": "{}",
               "profile": "{}", "lineage": "{}", "created_at": 1.0}  # fmt: skip
        columns = ", ".join(row)
        values = ", ".join(f":{k}" for k in row)
        connection.execute(
            sa.text(f"INSERT INTO keel_data_versions ({columns}) VALUES ({values})"), row
        )
    engine.dispose()
    store = MetadataStore.open(store_url)
    try:
        catalog = Catalog(store)
        assert [(v.id, v.retired_reason) for v in catalog.live_versions("s")] == [("v" * 64, None)]
    finally:
        store.close()
