"""The quickstart data story: clean data published, a faulty batch quarantined."""

from __future__ import annotations

from pathlib import Path

from keel.data.demo import data_story
from keel.project import Project


def test_faulty_batch_is_quarantined_after_clean_ones(churn_sqlite: Path) -> None:
    """The story's last run is the faulty customers batch, refused for its duplicates."""
    with Project.open(churn_sqlite) as project:
        runs = data_story(project, rows=300)
    assert [r.status for r in runs] == ["published", "published", "quarantined"]
    assert runs[-1].report is not None
    assert "customer_id.unique" in {f.check for f in runs[-1].report.failures}
