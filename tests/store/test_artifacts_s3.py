"""The artifact store on a real S3 server: what a wrong bucket, wrong or missing
credentials, and an unreachable endpoint look like, and that nothing is written."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from keel.errors import ArtifactStoreUnavailable
from keel.project import Project
from keel.store import ArtifactStore
from tests.s3server import S3Server


@pytest.fixture
def fast_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """One attempt per S3 call (the AWS default retries for seconds before failing)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def test_a_bucket_that_does_not_exist_is_named_at_the_first_write(s3_bucket: str) -> None:
    """Writing to a missing bucket is one sentence naming the bucket; none is created."""
    missing = f"keel-missing-{uuid.uuid4().hex[:8]}"
    store = ArtifactStore(f"s3://{missing}/keel")
    with pytest.raises(ArtifactStoreUnavailable, match=f"bucket '{missing}' does not exist"):
        store.put_bytes(b"model")


def test_a_missing_bucket_is_not_created_by_the_write(s3_server: S3Server, s3_bucket: str) -> None:
    """After the refused write the bucket still does not exist on the server."""
    missing = f"keel-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ArtifactStoreUnavailable):
        ArtifactStore(f"s3://{missing}/keel").put_bytes(b"model")
    assert missing not in s3_server.filesystem().ls("", refresh=True)


def test_read_only_credentials_are_refused_and_nothing_is_written(
    s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials that may only read get one sentence about access; the bucket stays empty."""
    for name, value in s3_server.env(read_only=True).items():
        monkeypatch.setenv(name, value)
    store = ArtifactStore(f"s3://{s3_bucket}/keel")
    with pytest.raises(ArtifactStoreUnavailable, match="refused access"):
        store.put_bytes(b"model")
    assert s3_server.filesystem().find(s3_bucket, refresh=True) == []


def test_read_only_credentials_still_read(
    s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader (a worker with read-only keys) gets back what a writer stored."""
    digest = ArtifactStore(f"s3://{s3_bucket}/keel").put_bytes(b"weights")
    for name, value in s3_server.env(read_only=True).items():
        monkeypatch.setenv(name, value)
    assert ArtifactStore(f"s3://{s3_bucket}/keel").get_bytes(digest) == b"weights"


def test_an_s3_path_without_credentials_says_so(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No key in the environment, no AWS files: the sentence names the variables to set."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ArtifactStoreUnavailable, match=r"no credentials .* AWS_ACCESS_KEY_ID"):
        ArtifactStore(f"s3://{s3_bucket}/keel").put_bytes(b"model")


def test_an_unreachable_endpoint_is_one_sentence(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch, fast_failures: None
) -> None:
    """Nothing listening at the endpoint: 'cannot reach', not a botocore traceback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    with pytest.raises(ArtifactStoreUnavailable, match=f"cannot reach s3://{s3_bucket}/keel"):
        ArtifactStore(f"s3://{s3_bucket}/keel").put_bytes(b"model")


def test_a_project_keeps_its_artifacts_in_the_bucket_keel_yaml_names(
    s3_server: S3Server, s3_bucket: str, project_dir: Path
) -> None:
    """``artifacts: s3://bucket/prefix`` in keel.yaml puts blobs under that prefix."""
    (project_dir / "keel.yaml").write_text(f"name: s3\nartifacts: s3://{s3_bucket}/models\n")
    with Project.open(project_dir) as project:
        digest = project.artifacts.put_bytes(b"a model")
    stored = s3_server.filesystem().find(f"{s3_bucket}/models", refresh=True)
    assert stored == [f"{s3_bucket}/models/sha256/{digest[:2]}/{digest}"]
