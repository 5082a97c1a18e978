"""Fixtures for the serving tests: a project with a model handed in and API keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.project import Project
from tests.serving.helpers import write_config


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    """A fresh project whose serving settings are the defaults, without a cache."""
    write_config(project_dir, "rate_limit: 1000/second\ntimeout_ms: 2000")
    with Project.open(project_dir) as opened:
        yield opened
