"""The quickstart's data story: publish the example data, then watch a faulty batch of
customers get quarantined with a report naming every planted fault."""

from __future__ import annotations

from keel.data.ingestion import Ingestion, ingest
from keel.data.model import Run
from keel.project import Project

__all__ = ["DEMO_FAULTS", "data_story"]

DEMO_FAULTS = ("duplicate_keys", "out_of_range", "nulls")


def data_story(project: Project, *, rows: int = 500, seed: int = 42) -> list[Run]:
    """Ingest every source, then a faulty copy of customers (written under .keel/demo).

    The last run is the faulty batch: quarantined when customers has checks that catch
    the faults (its ``key:`` alone catches the duplicate keys). Nothing is published
    from it and the project's data folder is left untouched.
    """
    from keel.examples import generate

    runs = ingest(project)
    if "customers" not in project.config.sources:
        return runs
    folder = project.state_dir / "demo"
    generate(folder, rows=rows, seed=seed, faults=list(DEMO_FAULTS))
    faulty = folder / "data" / "customers.csv"
    config = project.config.sources["customers"].model_copy(update={"path": str(faulty)})
    return [*runs, Ingestion(project).run("customers", config=config)]
