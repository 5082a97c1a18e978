"""Feedback during a metadata-store outage: a quick JSON 503, and predictions go on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from keel.project import Project
from keel.serving import create_app
from tests.helpers import Relay
from tests.serving.helpers import GOOD, auth, backend, client, create_key


@pytest.fixture
def relayed(project_dir: Path, postgres_url: str) -> Iterator[tuple[Project, Relay]]:
    """A project whose PostgreSQL store is reached through a relay the test can cut."""
    with Relay(postgres_url) as relay:
        (project_dir / "keel.yaml").write_text(
            f"name: churn\nstore: '{relay.url(postgres_url)}'\n"
            "serving: {rate_limit: 1000/second, timeout_ms: 5000}\n"
        )
        with Project.open(project_dir) as project:
            yield project, relay


def _stored(postgres_url: str) -> list[str]:
    """The prediction ids in the feedback table, read straight from PostgreSQL."""
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT prediction_id FROM keel_feedback"))
            return sorted(row[0] for row in rows)
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.anyio
async def test_feedback_answers_503_quickly_while_the_store_is_cut(
    relayed: tuple[Project, Relay], postgres_url: str
) -> None:
    """With the store's connection cut and new ones left unanswered, feedback gets a JSON
    503 with Retry-After within 5 s, predictions still answer 200, and once the network
    is back the same feedback is stored."""
    project, relay = relayed
    headers = auth(create_key(project, "predict", "feedback"))
    async with client(create_app(project, model=backend())) as c:
        before = await c.post(
            "/v1/feedback", json={"prediction_id": "p1", "label": 1}, headers=headers
        )
        relay.cut(hold=True)
        started = time.monotonic()
        down = await c.post(
            "/v1/feedback", json={"prediction_id": "p2", "label": 0}, headers=headers
        )
        took = time.monotonic() - started
        predicted = await c.post("/v1/predict", json={"instance": GOOD}, headers=headers)
        relay.restore()
        after = await c.post(
            "/v1/feedback", json={"prediction_id": "p2", "label": 0}, headers=headers
        )
    assert before.status_code == 200
    assert down.status_code == 503 and took < 5, (down.status_code, took)
    assert down.headers["content-type"] == "application/json"
    assert int(down.headers["retry-after"]) > 0 and down.json()["stored"] == 0
    assert "metadata store is unreachable" in down.json()["error"]
    assert predicted.status_code == 200 and predicted.json()["predictions"][0]["prediction"] in (
        0,
        1,
    )
    assert after.status_code == 200 and after.json() == {"stored": 1}
    assert _stored(postgres_url) == ["p1", "p2"]
