"""deploy/keel.yaml: valid, and every address and secret in it comes from the environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from keel.errors import ConfigError
from keel.project import Project
from keel.store.artifacts import storage_options
from tests.deploy.helpers import KEEL_YAML

ENV = {
    "KEEL_STORE_URL": "postgresql://keel:pw@postgres:5432/keel",
    "KEEL_REDIS_URL": "redis://:pw@redis:6379/0",
    "KEEL_ARTIFACTS_URL": "s3://keel/artifacts",
    "KEEL_S3_ENDPOINT": "http://s3:8333",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "keel",
    "AWS_SECRET_ACCESS_KEY": "secret",
}


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """deploy/keel.yaml in a project folder, with the variables it reads set."""
    shutil.copy(KEEL_YAML, tmp_path / "keel.yaml")
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def test_the_deployment_config_points_keel_at_postgres_redis_and_s3(deployed: Path) -> None:
    """Opened as keel serve opens it, the project uses the URLs the environment gives."""
    with Project.open(deployed) as project:
        serving = project.config.serving
        assert project.store_url == ENV["KEEL_STORE_URL"]
        assert project.artifacts_location == ENV["KEEL_ARTIFACTS_URL"]
    assert serving is not None and serving.cache is not None
    assert serving.rate_limit_url == serving.cache.url == ENV["KEEL_REDIS_URL"]
    assert serving.log_format == "json"


def test_the_deployment_config_gives_s3_its_endpoint_and_keys(deployed: Path) -> None:
    """storage.s3 hands the environment's S3 endpoint, region and keys to s3fs."""
    with Project.open(deployed) as project:
        storage = project.config.storage
    assert storage is not None and storage.s3 is not None
    assert storage_options(storage) == {
        "s3": {
            "endpoint_url": ENV["KEEL_S3_ENDPOINT"],
            "key": ENV["AWS_ACCESS_KEY_ID"],
            "secret": ENV["AWS_SECRET_ACCESS_KEY"],
            "client_kwargs": {"region_name": ENV["AWS_DEFAULT_REGION"]},
        }
    }


def test_an_unset_variable_is_one_error_naming_it(
    deployed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without KEEL_REDIS_URL the project does not open, and the error says what to export."""
    monkeypatch.delenv("KEEL_REDIS_URL")
    with pytest.raises(ConfigError, match=r"variable KEEL_REDIS_URL is not set; export it"):
        Project.open(deployed)
