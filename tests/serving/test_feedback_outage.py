"""Feedback during a metadata-store outage: a quick JSON 503, and predictions go on.

The store is a real PostgreSQL reached through a TCP relay on loopback that the test cuts
(new connections are accepted and never answered, as by a hung server) and restores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from keel.project import Project
from tests.helpers import Relay, free_port
from tests.serving.helpers import GOOD, auth, create_key, register_model
from tests.serving.test_process import REPO, wait_ready


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


def _feedback(url: str, headers: dict[str, str]) -> httpx.Response:
    """POST the same label for prediction p1, with a timeout far past the bound."""
    body = {"prediction_id": "p1", "label": 1}
    return httpx.post(f"{url}/v1/feedback", json=body, headers=headers, timeout=30)


@pytest.mark.postgres
def test_a_served_process_answers_feedback_503_and_keeps_predicting_while_the_store_is_cut(
    relayed: tuple[Project, Relay], postgres_url: str, tmp_path: Path
) -> None:
    """``keel serve`` on a PostgreSQL store behind a cut relay: feedback over HTTP gets a
    JSON 503 with Retry-After within 5 s, predictions keep answering 200, and feedback is
    stored again once the relay is restored."""
    project, relay = relayed
    register_model(project, tmp_path)
    headers = auth(create_key(project, "predict", "feedback"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "keel", "serve", "--project", str(project.root)]
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen([*command, "--port", str(port)], stdout=log, stderr=log, env=env)
    try:
        wait_ready(url, process)
        relay.cut(hold=True)
        started = time.monotonic()
        down = _feedback(url, headers)
        took = time.monotonic() - started
        predicted = [
            httpx.post(f"{url}/v1/predict", json={"instance": GOOD}, headers=headers, timeout=10)
            for _ in range(3)
        ]
        relay.restore()
        after = _feedback(url, headers)
    finally:
        process.terminate()
        process.wait(30)
    assert down.status_code == 503 and took < 5, (down.status_code, took, down.text)
    assert down.headers["content-type"] == "application/json"
    assert int(down.headers["retry-after"]) > 0 and down.json()["stored"] == 0
    assert "metadata store is unreachable" in down.json()["error"]
    assert [response.status_code for response in predicted] == [200] * 3
    assert after.status_code == 200 and _stored(postgres_url) == ["p1"]
    assert "Traceback" not in (tmp_path / "server.log").read_text()
