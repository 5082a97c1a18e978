"""Fixtures for the data layer: example projects on every metadata store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from keel.examples import generate
from keel.project import Project

CHURN_SOURCES = {
    "customers": {
        "kind": "csv",
        "path": "data/customers.csv",
        "key": "customer_id",
        "key_policy": "upsert",  # as in the example project: customers get updated
        "timestamp": "updated_at",
        "checks": {
            "columns": {
                "customer_id": {"type": "string", "regex": "c_[0-9]{6}"},
                "signup_at": {"type": "timestamp"},
                "age": {"type": "int", "range": [18, 110], "not_null": True},
                "plan": {
                    "type": "category",
                    "allowed": ["basic", "standard", "premium"],
                    "not_null": True,
                },
                "region": {"type": "category"},
                "income": {"type": "float", "range": [0, None]},
                "monthly_charges": {"type": "float", "range": [0, 1000]},
                "updated_at": {"type": "timestamp"},
            },
            "rules": [{"name": "signup_before_update", "expr": "signup_at <= updated_at"}],
        },
    },
    "events": {
        "kind": "csv",
        "path": "data/events/*.csv",
        "timestamp": "event_time",
        "checks": {
            "columns": {"amount": {"type": "float", "not_null": True}},
            "references": [{"column": "customer_id", "to": "customers.customer_id"}],
            "ordered": {"by": "event_time"},
            "extra_columns": "ignore",
        },
    },
}


def write_config(root: Path, sources: dict[str, object], store_url: str | None = None) -> None:
    """Write keel.yaml with ``sources`` (and the store URL) into ``root``."""
    config: dict[str, object] = {"name": "data-test", "sources": sources}
    if store_url is not None:
        config["store"] = store_url
    (root / "keel.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def churn_dir(tmp_path: Path, store_url: str) -> Path:
    """A project with the clean example data (300 customers, 2 months) and its checks."""
    root = tmp_path / "churn"
    generate(root, rows=300, months=2, seed=7)
    write_config(root, CHURN_SOURCES, store_url)
    return root


@pytest.fixture
def churn_sqlite(tmp_path: Path) -> Path:
    """The same project on the default embedded store only (for store-independent tests)."""
    root = tmp_path / "churn"
    generate(root, rows=300, months=2, seed=7)
    write_config(root, CHURN_SOURCES)
    return root


@pytest.fixture
def churn(churn_dir: Path) -> Iterator[Project]:
    """The churn project, opened."""
    with Project.open(churn_dir) as project:
        yield project
