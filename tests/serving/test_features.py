"""Online features on the predict path: looked up per entity, and a store outage falls back."""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.serving import create_app
from tests.helpers import Relay
from tests.serving.helpers import auth, backend, client, create_key

SUMMARY = re.compile(r"(\d+) feature lookups failed in the last \d+ s: ")

FEATURES = """\
from keel.features import FeatureView

profile = FeatureView(
    name="profile", source="customers", entity="customer_id", timestamp="updated_at",
    features=("spend",), ttl="3650d",
)
"""


def feature_project(root: Path, online: str = "sqlite", name: str = "churn") -> Project:
    (root / "keel.yaml").write_text(
        f"name: {name}\nsources:\n  customers: {{kind: csv, path: data/customers.csv}}\n"
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


@pytest.mark.redis
@pytest.mark.anyio
async def test_a_redis_outage_is_logged_once_summarised_and_its_recovery_once(
    project_dir: Path, redis_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    """With Redis cut while 200+ lookups run, the log holds the first failure with its
    cause, summaries counting the rest, and one recovery line: not a line per lookup."""
    from keel.features import FeatureStore

    monkeypatch.setattr("keel.serving.outages.SUMMARY_EVERY_S", 0.5)
    caplog.set_level(logging.INFO)
    name = f"outage-{uuid.uuid4().hex[:12]}"  # its own namespace in the shared Redis
    with (
        Relay(redis_url) as relay,
        feature_project(project_dir, relay.url(redis_url), name) as project,
    ):
        store = FeatureStore.open(project)
        store.online.write("profile", [("c1", datetime(2026, 1, 1), {"spend": 55.5})])
        key = create_key(project)
        instance = {"customer_id": "c1", "tenure": 12, "visits": 3}
        try:
            async with client(create_app(project, model=backend())) as c:

                async def fallback() -> Any:
                    response = await c.post(
                        "/v1/predict", json={"instance": instance}, headers=auth(key)
                    )
                    return response.json()["predictions"][0]["fallback"]

                relay.cut()
                answers = [await fallback() for _ in range(220)]
                time.sleep(0.6)  # past the interval: the next failure brings a summary
                answers.append(await fallback())
                relay.restore()
                recovered = [await fallback() for _ in range(3)]
        finally:
            store.online.clear("profile")
            store.close()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    summaries = [int(m.group(1)) for m in map(SUMMARY.match, lines) if m]
    assert answers == ["none"] * 221 and recovered == [None] * 3
    assert len(lines) <= 10, lines
    assert "feature lookups are failing: cannot reach the online store" in lines[0]
    assert 1 + sum(summaries) == 221, lines
    assert [line for line in lines if "recovered" in line] == [
        next(line for line in lines if line.startswith("feature lookups recovered"))
    ]
    assert "(221 failed;" in lines[-1]
