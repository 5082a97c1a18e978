"""A small project with hand-made sources, ingested through the real data layer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keel.features import FeatureStore
from keel.project import Project

CONFIG = """\
name: feature-tests
sources:
  customers:
    kind: csv
    path: data/customers*.csv
  events:
    kind: csv
    path: data/events*.csv
features:
  module: features.py
"""

FEATURES = """\
from keel.features import Aggregation, FeatureView, request_transform

profile = FeatureView(
    name="profile", source="customers", entity="customer_id", timestamp="updated_at",
    features=("plan", "charges"), ttl="10d",
)

activity = FeatureView(
    name="activity", source="events", entity="customer_id", timestamp="event_time",
    every="1d", ttl="1d",
    features=(
        Aggregation("tickets_3d", fn="count", window="3d", where="kind = 'ticket'"),
        Aggregation("spend_2d", fn="sum", column="amount", window="2d", where="kind = 'pay'"),
        Aggregation("max_amount_2d", fn="max", column="amount", window="2d"),
    ),
)


@request_transform("spend_2d", "charges")
def spend_ratio(row):
    if row.get("spend_2d") is None or not row.get("charges"):
        return None
    return row["spend_2d"] / row["charges"]
"""

CUSTOMERS = """\
customer_id,updated_at,plan,charges
c1,2026-01-01 00:00:00,basic,10.0
c2,2026-01-01 00:00:00,premium,50.0
c1,2026-01-05 00:00:00,standard,20.0
c3,2026-01-02 12:00:00,basic,15.0
"""

EVENTS = """\
customer_id,event_time,kind,amount
c1,2026-01-01 10:00:00,ticket,0
c1,2026-01-02 09:00:00,pay,10.0
c1,2026-01-03 23:59:59,ticket,0
c2,2026-01-02 00:00:00,pay,50.0
c2,2026-01-04 00:00:00,pay,25.0
c3,2026-01-03 00:00:00,ticket,0
"""


def write_project(root: Path, features: str = FEATURES) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "keel.yaml").write_text(CONFIG)
    (root / "features.py").write_text(features)
    (root / "data" / "customers.csv").write_text(CUSTOMERS)
    (root / "data" / "events.csv").write_text(EVENTS)
    return root


def ingest(root: Path) -> None:
    from keel.data import ingest as run_ingest

    with Project.open(root) as project:
        runs = run_ingest(project)
    assert all(run.ok for run in runs), [run.message for run in runs]


@pytest.fixture
def feature_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project above, with both sources ingested into SQLite."""
    monkeypatch.delenv("KEEL_STORE_URL", raising=False)
    root = write_project(tmp_path / "project")
    ingest(root)
    return root


@pytest.fixture
def open_store(feature_project: Path) -> Iterator[Callable[[], FeatureStore]]:
    """Opens the project's feature store; closes everything afterwards."""
    opened: list[tuple[Project, FeatureStore]] = []

    def factory() -> FeatureStore:
        project = Project.open(feature_project)
        store = FeatureStore.open(project)
        opened.append((project, store))
        return store

    yield factory
    for project, store in opened:
        store.close()
        project.close()
