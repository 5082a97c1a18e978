"""Sources: files by path, folder or glob; SQL over PostgreSQL; watermarks; callables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from keel.data.catalog import Catalog
from keel.data.ingestion import ingest
from keel.data.sources import list_files, load_callable
from keel.errors import SourceError
from keel.project import Project
from tests.conftest import POSTGRES_URL, require_service
from tests.data.conftest import write_config


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [("data/a.csv", ["a.csv"]), ("data", ["a.csv", "b.csv"]), ("data/*.csv", ["a.csv", "b.csv"])],
)
def test_path_names_file_folder_or_glob(tmp_path: Path, pattern: str, expected: list[str]) -> None:
    """path: may name one file, a folder (its files) or a glob, listed in name order."""
    (tmp_path / "data").mkdir()
    for name in ("b.csv", "a.csv"):
        (tmp_path / "data" / name).write_text("x\n1\n")
    assert [p.name for p in list_files(tmp_path, pattern)] == expected


def test_no_matching_files_is_one_sentence(tmp_path: Path) -> None:
    """A path that matches nothing is a failed run naming the path."""
    write_config(tmp_path, {"t": {"kind": "csv", "path": "data/*.csv"}})
    with Project.open(tmp_path) as project:
        run = ingest(project)[0]
    assert run.status == "failed" and "data/*.csv" in run.message


def test_callable_must_take_no_arguments(tmp_path: Path) -> None:
    """A loader with other parameters is refused with a sentence saying what it must be."""
    (tmp_path / "loader.py").write_text("def load(table):\n    return None\n")
    with pytest.raises(SourceError, match="must take no arguments"):
        load_callable(tmp_path, "loader.py:load")


LOADER = """
from pathlib import Path
import pandas as pd

def load(since=None):
    with Path(__file__).with_name("calls.txt").open("a") as calls:
        calls.write(f"{since}\\n")
    days = pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"])
    return pd.DataFrame({"id": [1, 2, 3], "at": days})
"""


def test_callable_gets_the_watermark_and_rows_past_it_are_kept(tmp_path: Path) -> None:
    """A loader taking since= receives the last watermark; older rows are dropped anyway."""
    (tmp_path / "loader.py").write_text(LOADER)
    write_config(
        tmp_path, {"t": {"kind": "python", "callable": "loader.py:load", "watermark": "at"}}
    )
    with Project.open(tmp_path) as project:
        first = ingest(project)[0]
        again = ingest(project)[0]
    assert (first.status, first.rows) == ("published", 3)
    assert again.status == "already_ingested"
    assert (tmp_path / "calls.txt").read_text().split() == ["None", "2026-01-03T00:00:00"]


def test_file_source_with_watermark_keeps_only_newer_rows(tmp_path: Path) -> None:
    """A file rewritten with old and new rows publishes only the rows past the watermark."""
    (tmp_path / "data").mkdir()
    table = tmp_path / "data" / "t.csv"
    table.write_text("id,at\n1,2026-01-01 00:00:00\n2,2026-01-02 00:00:00\n")
    write_config(tmp_path, {"t": {"kind": "csv", "path": "data/t.csv", "watermark": "at"}})
    with Project.open(tmp_path) as project:
        ingest(project)
        table.write_text(table.read_text() + "3,2026-01-05 00:00:00\n")
        run = ingest(project)[0]
    assert (run.status, run.rows) == ("published", 1)


@pytest.fixture
def pg_table() -> Iterator[str]:
    """A fresh PostgreSQL table of orders with an updated_at watermark column."""
    require_service("PostgreSQL", POSTGRES_URL)
    name = f"orders_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(
            sa.text(f"CREATE TABLE {name} (id int, amount float, updated_at timestamp)")
        )
        connection.execute(
            sa.text(
                f"INSERT INTO {name} SELECT g, g * 1.5, "
                "timestamp '2026-01-01' + g * interval '1 hour' FROM generate_series(1, 50) g"
            )
        )
    try:
        yield name
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE {name}"))
        engine.dispose()


@pytest.mark.postgres
def test_sql_source_reads_past_the_watermark(tmp_path: Path, pg_table: str, store_url: str) -> None:
    """A SQL source publishes its rows, then only rows past the last watermark."""
    source = {
        "kind": "sql",
        "url": POSTGRES_URL,
        "query": f"SELECT * FROM {pg_table}",
        "watermark": "updated_at",
        "key": "id",
    }
    write_config(tmp_path, {"orders": source}, store_url)
    with Project.open(tmp_path) as project:
        first = ingest(project)[0]
        again = ingest(project)[0]
        engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as connection:
            connection.execute(
                sa.text(f"INSERT INTO {pg_table} VALUES (51, 3.0, timestamp '2026-02-01')")
            )
        engine.dispose()
        third = ingest(project)[0]
        latest = Catalog(project.store).latest("orders")
    assert (first.status, first.rows) == ("published", 50)
    assert again.status == "already_ingested"
    assert (third.status, third.rows) == ("published", 1)
    assert latest is not None and latest.watermark == "2026-02-01T00:00:00"
    assert latest.lineage["since"] == "2026-01-03T02:00:00"


def test_sql_error_is_a_failed_run(tmp_path: Path) -> None:
    """A query that does not run is a failed run quoting the database's complaint."""
    db = tmp_path / "src.db"
    source = {"kind": "sql", "url": f"sqlite:///{db}", "query": "SELECT * FROM missing"}
    write_config(tmp_path, {"t": source})
    with Project.open(tmp_path) as project:
        run = ingest(project)[0]
    assert run.status == "failed" and "no such table" in run.message


def test_fsspec_url_source_is_read_and_named_by_url(tmp_path: Path) -> None:
    """Files behind an fsspec URL are ingested, with the URL in the lineage."""
    import fsspec

    folder = f"keel-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"/{folder}/a.csv", b"id,amount\na1,1.5\n")
    fs.pipe(f"/{folder}/b.csv", b"id,amount\nb1,2.5\n")
    write_config(tmp_path, {"t": {"kind": "csv", "path": f"memory://{folder}/*.csv"}})
    try:
        with Project.open(tmp_path) as project:
            run = ingest(project)[0]
            again = ingest(project)[0]
            version = Catalog(project.store).latest("t")
    finally:
        fs.rm(f"/{folder}", recursive=True)
    assert (run.status, run.rows, again.status) == ("published", 2, "already_ingested")
    assert version is not None
    assert [f["path"] for f in version.lineage["files"]] == [
        f"memory://{folder}/a.csv",
        f"memory://{folder}/b.csv",
    ]


def test_parquet_folder_is_published(tmp_path: Path) -> None:
    """A folder of Parquet files becomes one version holding all their rows."""
    from keel.data.batch import Batch

    (tmp_path / "data").mkdir()
    for month in (1, 2):
        with Batch.from_sql(f"SELECT range AS id, {month} AS month FROM range(100)") as batch:
            batch.write_parquet(tmp_path / "data" / f"m{month}.parquet")
    write_config(tmp_path, {"t": {"kind": "parquet", "path": "data", "key": "id"}})
    with Project.open(tmp_path) as project:
        run = ingest(project)[0]
    assert run.status == "quarantined"  # ids repeat across the two files
    assert run.report is not None and run.report.failures[0].check == "id.unique"
    assert run.rows == 200


def test_yes_no_words_stay_text_while_true_false_is_a_boolean(tmp_path: Path) -> None:
    """A CSV column of Yes/No keeps its words (DuckDB alone read them as booleans, so a
    model trained on them served 1.0/0.0 and refused "Yes"); true/false stays boolean."""
    from keel.data.sources import read_source
    from keel.schema import SourceConfig

    (tmp_path / "t.csv").write_text("id,student,active\n1,Yes,true\n2,No,false\n3,,true\n")
    config = SourceConfig(kind="csv", path="t.csv")
    read = read_source(tmp_path, config, set(), None)
    assert read.batch is not None
    with read.batch as batch:
        assert (batch.schema["student"], batch.schema["active"]) == ("VARCHAR", "BOOLEAN")
        values = [row["student"] for row in batch.records("SELECT student FROM batch")]
    assert values == ["Yes", "No", None]
