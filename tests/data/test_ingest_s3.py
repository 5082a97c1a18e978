"""`keel ingest` of a source on a real S3 server, into an artifact store on S3."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from keel.cli.main import app
from keel.data.access import read_version
from keel.data.catalog import Catalog
from keel.project import Project
from tests.s3server import S3Server

FILES = {
    "raw/2026-01.csv": b"id,amount\na1,1.5\na2,2.5\n",
    "raw/2026-02.csv": b"id,amount\nb1,4.0\nb2,8.25\nb3,0.5\n",
}


def test_keel_ingest_reads_an_s3_source_into_s3_artifacts(
    s3_server: S3Server, s3_bucket: str, project_dir: Path
) -> None:
    """Every CSV under the s3:// glob is published once, its rows intact, its URL in the
    lineage, the version's Parquet stored in the bucket."""
    fs = s3_server.filesystem()
    for name, data in FILES.items():
        fs.pipe(f"{s3_bucket}/{name}", data)
    (project_dir / "keel.yaml").write_text(
        f"name: s3-ingest\nartifacts: s3://{s3_bucket}/keel\n"
        f"sources:\n  sales:\n    kind: csv\n    path: s3://{s3_bucket}/raw/*.csv\n    key: id\n"
    )
    result = CliRunner().invoke(app, ["ingest", "--json", "--project", str(project_dir)])
    assert result.exit_code == 0, result.stdout
    (run,) = json.loads(result.stdout)["runs"]
    expected = pd.concat([pd.read_csv(io.BytesIO(data)) for data in FILES.values()])
    with Project.open(project_dir) as project:
        version = Catalog(project.store).latest("sales")
        assert version is not None
        frame = read_version(project, version)
    assert (run["status"], run["rows"]) == ("published", len(expected))
    assert [f["path"] for f in version.lineage["files"]] == [
        f"s3://{s3_bucket}/{name}" for name in FILES
    ]
    assert sorted(zip(frame["id"], frame["amount"], strict=True)) == sorted(
        zip(expected["id"], expected["amount"], strict=True)
    )
    assert fs.exists(f"{s3_bucket}/keel/sha256/{version.artifact[:2]}/{version.artifact}")


def test_a_source_in_a_bucket_that_does_not_exist_names_the_bucket(
    s3_bucket: str, project_dir: Path
) -> None:
    """The run fails with one sentence naming the missing bucket, not 'no files match'."""
    (project_dir / "keel.yaml").write_text(
        "name: s3-ingest\nsources:\n  sales:\n    kind: csv\n"
        "    path: s3://keel-no-such-bucket/raw/*.csv\n"
    )
    result = CliRunner().invoke(app, ["ingest", "--json", "--project", str(project_dir)])
    (run,) = json.loads(result.stdout)["runs"]
    assert run["status"] == "failed"
    assert run["message"].startswith("bucket 'keel-no-such-bucket' does not exist")
