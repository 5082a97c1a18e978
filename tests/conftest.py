"""Shared fixtures: a fresh project per test, and store URLs for every backend.

PostgreSQL and Redis tests run whenever the servers answer. Under CI=true they are
required: an unreachable server fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytest_plugins = ["tests.s3server", "tests.cluster"]  # s3_server, s3_bucket; cluster

# Two cores are shared by test processes: OpenMP pools sized to the machine in every
# process oversubscribe it badly (a 0.3 s fit took 4-9 s), so tests use one thread each.
os.environ.setdefault("OMP_NUM_THREADS", "1")

POSTGRES_URL = os.environ.get("KEEL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

MINIMAL_CONFIG = "name: test-project\n"


def _unreachable(url: str) -> str | None:
    """Why the server behind ``url`` cannot be reached, or None if it answers."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 0), timeout=2):
            return None
    except OSError as error:
        return f"{parsed.hostname}:{parsed.port} ({error.strerror or error})"


def require_service(name: str, url: str) -> None:
    """Skip with a one-line reason, or fail under CI=true, when ``url`` is unreachable."""
    reason = _unreachable(url)
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{name} is required under CI=true but is unreachable at {reason}")
    pytest.skip(f"{name} not reachable at {reason}")


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A fresh project folder with a minimal keel.yaml."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "keel.yaml").write_text(MINIMAL_CONFIG)
    return root


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require_service("PostgreSQL", POSTGRES_URL)
    from tests.helpers import postgres_schema

    with postgres_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh metadata store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'keel.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def redis_url() -> str:
    """The Redis URL, after checking the server answers."""
    require_service("Redis", REDIS_URL)
    return REDIS_URL
