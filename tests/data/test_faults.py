"""Every fault the example generator can plant is caught by the right check."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.data.ingestion import ingest
from keel.examples import generate
from keel.project import Project

CAUGHT_BY = {
    "nulls": {"customers": {"age.not_null", "plan.not_null"}, "events": {"amount.not_null"}},
    "out_of_range": {"customers": {"age.range", "monthly_charges.range"}},
    "duplicate_keys": {"customers": {"customer_id.unique"}},
    "orphan_keys": {"events": {"reference:customer_id->customers.customer_id"}},
    "out_of_order": {"events": {"ordered:event_time"}},
    "type_change": {"customers": {"age.type"}},
    "dropped_column": {"customers": {"income.missing"}},
}


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
def test_fault_is_caught_by_its_check(churn_sqlite: Path, fault: str) -> None:
    """A faulty batch after a clean one is quarantined, naming exactly the right checks."""
    with Project.open(churn_sqlite) as project:
        assert all(run.status == "published" for run in ingest(project))
        generate(churn_sqlite, rows=300, months=2, seed=7, faults=[fault])
        runs = {run.source: run for run in ingest(project)}
    for source, checks in CAUGHT_BY[fault].items():
        run = runs[source]
        assert run.status == "quarantined", run.message
        assert run.report is not None
        blocking = {f.check for f in run.report.findings if f.blocking}
        assert blocking == checks
    for source in set(runs) - set(CAUGHT_BY[fault]):
        assert runs[source].status == "already_ingested"
