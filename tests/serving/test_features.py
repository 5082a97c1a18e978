"""Online features on the predict path: looked up per entity, and a store outage falls back."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import auth, backend, client, create_key

FEATURES = """\
from keel.features import FeatureView

profile = FeatureView(
    name="profile", source="customers", entity="customer_id", timestamp="updated_at",
    features=("spend",), ttl="3650d",
)
"""


def feature_project(root: Path, online: str = "sqlite") -> Project:
    (root / "keel.yaml").write_text(
        "name: churn\nsources:\n  customers: {kind: csv, path: data/customers.csv}\n"
        f"features: {{module: features.py, online: '{online}'}}\n"
        "serving: {rate_limit: 1000/second, timeout_ms: 5000}\n"
    )
    (root / "features.py").write_text(FEATURES)
    return Project.open(root)


async def predict(project: Project, instance: dict[str, Any]) -> Any:
    key = create_key(project)
    async with client(create_app(project, model=backend())) as c:
        return await c.post("/v1/predict", json={"instance": instance}, headers=auth(key))


@pytest.mark.anyio
async def test_features_the_request_lacks_come_from_the_online_store(project_dir: Path) -> None:
    """A request with the entity id and no 'spend' is completed from the store, answered,
    and logged with the looked-up feature beside its inputs."""
    from keel.features import FeatureStore

    with feature_project(project_dir) as project:
        store = FeatureStore.open(project)
        store.online.write("profile", [("c1", datetime(2026, 1, 1), {"spend": 55.5})])
        store.close()
        response = await predict(project, {"customer_id": "c1", "tenure": 12, "visits": 3})
        with PredictionLog.for_project(project) as log:
            logged = log.read()
    answer = response.json()["predictions"][0]
    assert response.status_code == 200 and answer["fallback"] is None
    assert logged["feature.spend"].tolist() == [55.5] and logged["input.customer_id"][0] == "c1"


@pytest.mark.anyio
async def test_an_unreachable_feature_store_goes_down_the_fallback_chain(
    project_dir: Path,
) -> None:
    """With the online store's server unreachable, the answer is a fallback naming the cause."""
    with feature_project(project_dir, online="redis://127.0.0.1:1/0") as project:
        response = await predict(project, {"customer_id": "c1", "tenure": 12, "visits": 3})
    answer = response.json()["predictions"][0]
    assert response.status_code == 200 and answer["fallback"] == "none"
    assert "OnlineStoreUnavailable" in answer["reason"]
