"""Shared fixtures for the delivery tests: a project on every metadata store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.project import Project


@pytest.fixture
def project(project_dir: Path, store_url: str) -> Iterator[Project]:
    """A project named churn on each metadata store backend."""
    (project_dir / "keel.yaml").write_text(f"name: churn\nstore: {store_url}\n")
    with Project.open(project_dir) as opened:
        yield opened
