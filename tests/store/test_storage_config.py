"""keel.yaml's ``storage: {s3: ...}``: the S3 endpoint, region and credentials come from the
config (secrets through ``${VAR}``), with no AWS variable in the environment, for the
artifact store, an s3:// source and the prediction log's segments, on a real S3 server."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from keel.config import parse_config
from keel.data import Ingestion
from keel.data.access import read_version
from keel.data.catalog import Catalog
from keel.errors import ArtifactStoreUnavailable, ConfigError
from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.schema import S3Storage, StorageConfig
from keel.store.artifacts import storage_options
from tests.s3server import S3Server

CSV = b"id,amount\na1,1.5\na2,2.5\na3,4.0\n"


def _configured(root: Path, s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose keel.yaml names the S3 server and reads its keys from S3_KEY/S3_SECRET."""
    monkeypatch.setenv("S3_KEY", s3.credentials["key"])
    monkeypatch.setenv("S3_SECRET", s3.credentials["secret"])
    root.mkdir(parents=True, exist_ok=True)
    (root / "keel.yaml").write_text(
        f"name: s3-config\nartifacts: s3://{bucket}/keel\n"
        "storage:\n  s3:\n"
        f"    endpoint_url: {s3.url}\n    region: us-east-1\n"
        "    key: ${S3_KEY}\n    secret: ${S3_SECRET}\n    max_attempts: 1\n"
        f"sources:\n  sales: {{kind: csv, path: 's3://{bucket}/landing/*.csv', key: id}}\n"
    )
    return root


def test_artifacts_reach_the_endpoint_keel_yaml_names(
    s3_server: S3Server, bare_environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An artifact stored through the project lands in the configured bucket on the
    configured server and reads back verified."""
    bucket = s3_server.create_bucket()
    root = _configured(tmp_path / "p", s3_server, bucket, monkeypatch)
    with Project.open(root) as project:
        digest = project.artifacts.put_bytes(b"weights")
        assert project.artifacts.get_bytes(digest) == b"weights"
    stored = s3_server.filesystem().cat(f"{bucket}/keel/sha256/{digest[:2]}/{digest}")
    assert stored == b"weights"


def test_an_s3_source_is_ingested_through_the_configured_endpoint(
    s3_server: S3Server, bare_environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source's s3:// glob is read with keel.yaml's endpoint and keys: its rows, as
    pandas reads the file, are the published version's."""
    bucket = s3_server.create_bucket()
    s3_server.filesystem().pipe(f"{bucket}/landing/2026-01.csv", CSV)
    root = _configured(tmp_path / "p", s3_server, bucket, monkeypatch)
    with Project.open(root) as project:
        run = Ingestion(project).run("sales")
        version = Catalog(project.store).latest("sales")
        assert version is not None, run
        frame = read_version(project, version)
    expected = pd.read_csv(io.BytesIO(CSV))
    assert run.status == "published", run
    assert sorted(zip(frame["id"], frame["amount"], strict=True)) == sorted(
        zip(expected["id"], expected["amount"], strict=True)
    )


def test_prediction_log_segments_go_to_the_configured_endpoint(
    s3_server: S3Server, bare_environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments rolled from the spool are uploaded to the configured bucket, and a read
    through the project's log returns every logged prediction."""
    bucket = s3_server.create_bucket()
    root = _configured(tmp_path / "p", s3_server, bucket, monkeypatch)
    with Project.open(root) as project:
        log = PredictionLog.for_project(project, sync=False)
        ids = [log.record({"x": float(i)}, i % 2) for i in range(25)]
        result = log.flush()
        frame = log.read()
        log.close()
    parquet = [k for k in s3_server.filesystem().find(bucket, refresh=True) if "sha256" in k]
    assert (result.rows, result.pending) == (25, 0)
    assert sorted(frame["prediction_id"]) == sorted(ids) and len(parquet) == 1


def test_without_the_storage_section_the_same_project_cannot_reach_the_server(
    s3_server: S3Server, bare_environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same bucket with no storage section and no AWS environment has
    no credentials, so the config is what made the other tests work."""
    bucket = s3_server.create_bucket()
    root = tmp_path / "p"
    root.mkdir()
    (root / "keel.yaml").write_text(f"name: s3-config\nartifacts: s3://{bucket}/keel\n")
    with Project.open(root) as project, pytest.raises(ArtifactStoreUnavailable):
        project.artifacts.put_bytes(b"weights")


def test_a_secret_written_in_keel_yaml_is_refused(tmp_path: Path) -> None:
    """storage.s3.secret given as text (not ${VAR}) is one sentence naming the key."""
    text = "storage:\n  s3:\n    key: AKIA123\n    secret: hunter2\n"
    with pytest.raises(
        ConfigError, match=r"keel.yaml:4(:\d+)?: storage.s3.secret: the secret is written in"
    ):
        parse_config(text, tmp_path / "keel.yaml")


def test_a_key_without_its_secret_is_refused(tmp_path: Path) -> None:
    """key alone is a configuration error that says to set both."""
    with pytest.raises(ConfigError, match="key is set without secret; set both or neither"):
        parse_config("storage:\n  s3:\n    key: AKIA123\n", tmp_path / "keel.yaml")


def test_the_readmes_storage_example_is_valid_keel_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's storage: block, with its two variables set, loads and gives s3fs the
    endpoint, the region and both keys."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = re.findall(r"```yaml\n(storage:\n.*?)```", readme, re.DOTALL)
    monkeypatch.setenv("S3_ACCESS_KEY", "id")
    monkeypatch.setenv("S3_SECRET_KEY", "secret")
    options = storage_options(parse_config(block, tmp_path / "keel.yaml").config.storage)["s3"]
    assert (options["endpoint_url"], options["key"], options["secret"]) == (
        "http://minio.internal:9000",
        "id",
        "secret",
    )
    assert options["client_kwargs"] == {"region_name": "eu-west-1"}


def test_storage_options_are_s3fs_keywords() -> None:
    """Each setting maps to its s3fs/botocore keyword; unset ones are left out, so the
    environment still provides them."""
    config = StorageConfig(
        s3=S3Storage(
            endpoint_url="http://s3.internal:8333",
            region="eu-west-1",
            max_attempts=2,
            connect_timeout=timedelta(seconds=3),
            addressing_style="path",
        )
    )
    assert storage_options(config) == {
        "s3": {
            "endpoint_url": "http://s3.internal:8333",
            "client_kwargs": {"region_name": "eu-west-1"},
            "config_kwargs": {
                "retries": {"max_attempts": 2},
                "connect_timeout": 3.0,
                "s3": {"addressing_style": "path"},
            },
        }
    }
    assert storage_options(None) == storage_options(StorageConfig()) == {}
