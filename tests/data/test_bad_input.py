"""Bad input the data layer must survive with a clear outcome, never a crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from keel.data.batch import Batch
from keel.data.catalog import Catalog
from keel.data.ingestion import ingest
from keel.data.profiling import TOP_LIMIT, profile
from keel.project import Project
from tests.data.conftest import write_config

ROWS = "id,amount\na1,1.5\na2,2.5\n"


def _project(root: Path, source: dict[str, object], store_url: str | None = None) -> Project:
    (root / "data").mkdir(parents=True, exist_ok=True)
    write_config(root, {"things": source}, store_url)
    return Project.open(root)


def test_wrong_delimiter_is_a_schema_finding(tmp_path: Path) -> None:
    """A ';' file read with delimiter ',' is quarantined for its missing columns."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text(ROWS.replace(",", ";"))
    source = {
        "kind": "csv",
        "path": "data/t.csv",
        "delimiter": ",",
        "checks": {"columns": {"id": {"type": "string"}, "amount": {"type": "float"}}},
    }
    with _project(tmp_path, source) as project:
        run = ingest(project)[0]
    assert run.status == "quarantined"
    assert run.report is not None
    assert {f.check for f in run.report.findings if f.blocking} == {"id.missing", "amount.missing"}


def test_wrong_encoding_is_one_sentence(tmp_path: Path) -> None:
    """A Latin-1 file read as UTF-8 fails with a sentence naming the encoding: fix."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_bytes("id,city\n1,Malmö\n2,Gävle\n".encode("latin-1"))
    with _project(tmp_path, {"kind": "csv", "path": "data/t.csv"}) as project:
        run = ingest(project)[0]
    assert run.status == "failed"
    assert "encoding: latin-1" in run.message


def test_declared_encoding_reads_latin1(tmp_path: Path) -> None:
    """With encoding: latin-1 the same file is published, accents intact."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_bytes("id,city\n1,Malmö\n2,Gävle\n".encode("latin-1"))
    source = {"kind": "csv", "path": "data/t.csv", "encoding": "latin-1"}
    with _project(tmp_path, source) as project:
        run = ingest(project)[0]
        version = Catalog(project.store).latest("things")
    assert run.status == "published"
    assert version is not None and version.profile is not None
    city = version.profile.column("city")
    assert city is not None and dict(city.top) == {"Malmö": 1, "Gävle": 1}


def test_truncated_parquet_fails_cleanly(tmp_path: Path) -> None:
    """Half a Parquet file is a failed run whose message says it may be truncated."""
    (tmp_path / "data").mkdir()
    with Batch.from_sql("SELECT range AS id FROM range(1000)") as batch:
        whole = batch.write_parquet(tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "data" / "t.parquet").write_bytes(whole[: len(whole) // 2])
    with _project(tmp_path, {"kind": "parquet", "path": "data/t.parquet"}) as project:
        run = ingest(project)[0]
        runs = Catalog(project.store).runs()
    assert run.status == "failed"
    assert "truncated" in run.message
    assert [r.status for r in runs] == ["failed"]


def test_empty_batch_is_an_explicit_outcome(tmp_path: Path) -> None:
    """A file with a header and no rows is recorded as empty, and nothing is published."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("id,amount\n")
    with _project(tmp_path, {"kind": "csv", "path": "data/t.csv"}) as project:
        run = ingest(project)[0]
        assert Catalog(project.store).versions() == []
    assert run.status == "empty"


def test_million_distinct_strings_profile_in_bounded_memory() -> None:
    """A column of 1,000,000 distinct strings profiles under a 64 MB DuckDB memory limit."""
    with Batch.from_sql("SELECT 'user-' || range::VARCHAR AS s FROM range(1000000)") as batch:
        batch.con.execute("SET memory_limit = '64MB'")
        column = profile(batch).column("s")
    assert column is not None
    assert column.distinct > 900_000
    assert column.top == ()
    assert TOP_LIMIT < 100


def test_flaky_source_is_retried_into_one_version(tmp_path: Path) -> None:
    """A callable that fails twice and then succeeds yields one published version."""
    (tmp_path / "loader.py").write_text(
        textwrap.dedent(f"""
        from pathlib import Path
        import pandas as pd

        def load():
            tries = Path({str(tmp_path / "tries")!r})
            count = int(tries.read_text()) if tries.exists() else 0
            tries.write_text(str(count + 1))
            if count < 2:
                raise ConnectionError("the source hung up")
            return pd.DataFrame({{"id": ["a", "b"], "amount": [1.0, 2.0]}})
        """)
    )
    source = {"kind": "python", "callable": "loader.py:load", "retry": {"backoff": "10ms"}}
    with _project(tmp_path, source) as project:
        run = ingest(project)[0]
        versions = Catalog(project.store).versions()
    assert run.status == "published"
    assert (tmp_path / "tries").read_text() == "3"
    assert len(versions) == 1


def test_source_failing_past_retries_is_a_failed_run(tmp_path: Path) -> None:
    """A callable that always fails ends in one failed run saying how often it was tried."""
    (tmp_path / "loader.py").write_text("def load():\n    raise TimeoutError('slow')\n")
    source = {
        "kind": "python",
        "callable": "loader.py:load",
        "retry": {"attempts": 2, "backoff": "1ms"},
    }
    with _project(tmp_path, source) as project:
        run = ingest(project)[0]
    assert run.status == "failed"
    assert "after 2 attempts" in run.message


_CRASH = """
import os, signal, sys
from keel.data.ingestion import Ingestion
from keel.project import Project

class Crashing(Ingestion):
    def _store_batch(self, batch):
        digest = super()._store_batch(batch)
        print(digest, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # dies between the blob and the metadata

project = Project.open(sys.argv[1])
Crashing(project).run("things")
"""


def test_kill_mid_publish_leaves_no_half_version(tmp_path: Path, store_url: str) -> None:
    """Killed after writing the blob: no version exists; the next run completes the publish."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text(ROWS)
    source = {"kind": "csv", "path": "data/t.csv"}
    _project(tmp_path, source, store_url).close()
    src = Path(__file__).resolve().parents[2] / "src"
    killed = subprocess.run(
        [sys.executable, "-c", _CRASH, str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert killed.returncode == -9, killed.stderr
    orphan = killed.stdout.strip()
    with Project.open(tmp_path) as project:
        catalog = Catalog(project.store)
        assert catalog.versions() == [] and catalog.runs() == []
        assert project.artifacts.exists(orphan)
        project.store.leases.release(project.store.leases.current("ingest:things"))  # type: ignore[arg-type]
        run = ingest(project)[0]
        version = catalog.latest("things")
    assert run.status == "published"
    assert version is not None and version.artifact == orphan


def test_infinities_and_nan_survive_the_metadata_store(tmp_path: Path, store_url: str) -> None:
    """inf, -inf and NaN values are profiled, reported and recorded without error."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("x\ninf\n-inf\nnan\n1.5\n")
    checks = {"columns": {"x": {"type": "float", "range": [0, 10]}}}
    source = {"kind": "csv", "path": "data/t.csv", "checks": checks}
    with _project(tmp_path, source, store_url) as project:
        run = ingest(project)[0]
        recorded = Catalog(project.store).runs()[0]
    assert run.status == "quarantined"
    assert recorded.report is not None
    assert [f.check for f in recorded.report.failures] == ["x.range"]
