"""``keel predict --batch s3://... --out s3://...`` against a real S3 server: the table
read where it lies, the output one object, the rows those of scoring the same files
locally."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.compute.local import LocalEngine
from keel.errors import SourceError
from keel.project import Project
from keel.serving.batch_job import predict_batch
from tests.compute.conftest import expected_inputs
from tests.s3server import S3Server


def _upload(fs: object, bucket: str, root: Path) -> None:
    for file in sorted((root / "data" / "batch").glob("*.parquet")):
        fs.put_file(str(file), f"{bucket}/batch/{file.name}")  # type: ignore[attr-defined]


def test_an_s3_table_scores_into_one_s3_object(
    served_project: Path, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    """The CLI reads the three Parquet objects under ``s3://bucket/batch/`` and writes
    ``s3://bucket/out/scored.parquet``: every input row once, in order, equal (but for
    the random prediction id) to scoring the same files from disk."""
    fs = s3_server.filesystem()
    _upload(fs, s3_bucket, served_project)
    done = CliRunner().invoke(
        app,
        ["predict", "--batch", f"s3://{s3_bucket}/batch/", "--out",
         f"s3://{s3_bucket}/out/scored.parquet", "--engine", "local", "--json",
         "--project", str(served_project)],
    )  # fmt: skip
    assert done.exit_code == 0, done.stdout
    assert json.loads(done.stdout)["rows"] == len(expected_inputs(served_project))
    remote = pd.read_parquet(io.BytesIO(fs.cat(f"{s3_bucket}/out/scored.parquet")))
    with Project.open(served_project) as project:
        predict_batch(project, "data/batch", tmp_path / "local.parquet", LocalEngine())
    local = pd.read_parquet(tmp_path / "local.parquet")
    pd.testing.assert_frame_equal(
        remote.drop(columns="prediction_id"), local.drop(columns="prediction_id")
    )


def test_keel_yaml_s_storage_section_reaches_the_s3_tables(
    served_project: Path,
    s3_server: S3Server,
    s3_bucket: str,
    bare_environment: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no AWS variable anywhere, the endpoint and keys written in keel.yaml's
    ``storage:`` section (secrets through ${VAR}) reach the table listing, the partition
    reads and the upload of the scored object."""
    _upload(s3_server.filesystem(), s3_bucket, served_project)
    monkeypatch.setenv("S3_KEY", s3_server.credentials["key"])
    monkeypatch.setenv("S3_SECRET", s3_server.credentials["secret"])
    config = served_project / "keel.yaml"
    config.write_text(
        config.read_text()
        + f"storage:\n  s3:\n    endpoint_url: {s3_server.url}\n    region: us-east-1\n"
        "    key: ${S3_KEY}\n    secret: ${S3_SECRET}\n    max_attempts: 1\n"
    )
    out = f"s3://{s3_bucket}/out/configured.parquet"
    done = CliRunner().invoke(
        app,
        ["predict", "--batch", f"s3://{s3_bucket}/batch/", "--out", out, "--engine", "local",
         "--json", "--project", str(served_project)],
    )  # fmt: skip
    assert done.exit_code == 0, done.stdout
    scored = pd.read_parquet(io.BytesIO(s3_server.filesystem().cat(out.removeprefix("s3://"))))
    assert len(scored) == len(expected_inputs(served_project))


def test_a_missing_bucket_is_one_sentence(served_project: Path, s3_bucket: str) -> None:
    """Scoring from a bucket that does not exist fails with Keel's one-sentence error
    naming the bucket (the CLI's main prints it without a traceback)."""
    done = CliRunner().invoke(
        app,
        ["predict", "--batch", "s3://keel-no-such-bucket/batch/", "--out",
         f"s3://{s3_bucket}/out/x.parquet", "--engine", "local", "--project",
         str(served_project)],
    )  # fmt: skip
    assert isinstance(done.exception, SourceError)
    assert str(done.exception).startswith("bucket 'keel-no-such-bucket' does not exist")


class _Recording(LocalEngine):
    """The local engine, keeping every item it is given to map."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[object] = []

    def map(self, fn, shared, items):  # type: ignore[no-untyped-def, override]
        self.items.extend(items)
        return super().map(fn, shared, items)


def test_credentials_workers_sends_the_partitions_no_keys(
    served_project: Path,
    s3_server: S3Server,
    s3_bucket: str,
    bare_environment: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``compute.credentials: workers`` the partitions a batch job hands its engine
    carry keel.yaml's endpoint but not its key or secret: the task reads with the
    credentials of where it runs (here this process's AWS variables)."""
    _upload(s3_server.filesystem(), s3_bucket, served_project)
    key, secret = s3_server.credentials["key"], s3_server.credentials["secret"]
    monkeypatch.setenv("S3_KEY", key)
    monkeypatch.setenv("S3_SECRET", secret)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    config = served_project / "keel.yaml"
    config.write_text(
        config.read_text().replace("compute:\n", "compute:\n  credentials: workers\n")
        + f"storage:\n  s3:\n    endpoint_url: {s3_server.url}\n    region: us-east-1\n"
        "    key: ${S3_KEY}\n    secret: ${S3_SECRET}\n    max_attempts: 1\n"
    )
    engine = _Recording()
    out = served_project / "scored.parquet"
    with Project.open(served_project) as project:
        predict_batch(project, f"s3://{s3_bucket}/batch/", out, engine)
    assert len(pd.read_parquet(out)) == len(expected_inputs(served_project))
    assert len(engine.items) >= 3
    sent = repr(engine.items)
    assert s3_server.url in sent  # the endpoint travels
    assert key not in sent and secret not in sent
