"""Shared fixtures for the delivery tests: a project on every metadata store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.project import Project


def registry_row() -> dict[str, object]:
    """The registry row of a trained model version, enough for status and deploy tests."""
    return {
        "name": "churn",
        "source": "train",
        "artifact": "0" * 64,
        "size_bytes": 1,
        "config_hash": "h" * 64,
        "data_ref": "file:x.csv",
        "data_rows": 10,
        "data_start": None,
        "data_end": None,
        "metrics": {"roc_auc": 0.8},
        "duration_s": 0.1,
    }


@pytest.fixture
def project(project_dir: Path, store_url: str) -> Iterator[Project]:
    """A project named churn on each metadata store backend."""
    (project_dir / "keel.yaml").write_text(f"name: churn\nstore: {store_url}\n")
    with Project.open(project_dir) as opened:
        yield opened
