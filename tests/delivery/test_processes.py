"""Real `keel serve` and `keel worker` processes: sticky canary routing, automatic rollback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from keel.project import Project
from keel.training import Registry
from tests.delivery.helpers import stage_model, stop
from tests.delivery.models import Faulty
from tests.helpers import free_port as _free_port
from tests.serving.helpers import auth, create_key, fitted_model, register_model

CONFIG = """name: churn
serving:
  rate_limit: 100000/second
  timeout_ms: 2000
  entity: customer_id
  log_seal_every: 1s
rollout:
  canary:
    steps: [30, 100]
    hold: {min_requests: 50, min_time: 1h}
"""


def _ask(http: httpx.Client, key: str, i: int) -> str:
    row = {"tenure": 1 + i % 70, "spend": 35.0 + i % 30, "visits": i % 30, "customer_id": f"c{i}"}
    response = http.post("/v1/predict", json={"instance": row}, headers=auth(key))
    assert response.status_code == 200
    return str(response.json()["model_version"])


def _wait_ready(http: httpx.Client, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become ready")


def test_a_bad_canary_on_a_real_server_is_routed_sticky_and_rolled_back(
    project_dir: Path, tmp_path: Path
) -> None:
    """A real server sends a stable ~30% of customers to a canary failing one input in five;
    a real worker archives it, and the server then answers only with production."""
    (project_dir / "keel.yaml").write_text(CONFIG)
    with Project.open(project_dir) as project:
        register_model(project, tmp_path, seed=0)
        bad = Faulty(fitted_model(1)[0])
        canary = stage_model(project, tmp_path, "canary", model=bad, share=30).label
        key = create_key(project)
    port = _free_port()
    root = str(project_dir)
    env = {**os.environ, "KEEL_TEST_FAULT": "raise20"}
    serve = [sys.executable, "-m", "keel", "serve", "--port", str(port), "-p", root]
    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker: subprocess.Popen[bytes] | None = None
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            _wait_ready(http, 90)
            first = [_ask(http, key, i) for i in range(300)]
            assert first == [_ask(http, key, i) for i in range(300)], "assignment is sticky"
            assert 0.22 < first.count(canary) / 300 < 0.38
            time.sleep(1.2)  # the spool is sealed on the next append after a second
            _ask(http, key, 0)
            command = [sys.executable, "-m", "keel", "worker", "--every", "1s", "-p", root]
            worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            with Project.open(project_dir) as project:
                registry = Registry(project.store)
                while registry.versions(status="canary") and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert registry.versions(status="archived")[0].label == canary
            time.sleep(2.5)  # every replica drops the canary within its reload interval
            assert {_ask(http, key, i) for i in range(100)} == {"churn@1"}
    finally:
        if worker is not None:
            stop(worker)
        stop(server)


def test_a_shadow_that_raises_or_hangs_leaves_a_real_servers_answers_intact(
    project_dir: Path, tmp_path: Path
) -> None:
    """A shadow failing on one input in five and hanging 3 s on another: every live answer is
    production's, fast and without fallback, and the shadow's outputs are still logged."""
    (project_dir / "keel.yaml").write_text(CONFIG)
    with Project.open(project_dir) as project:
        register_model(project, tmp_path, seed=0)
        stage_model(project, tmp_path, "shadow", model=Faulty(fitted_model(1)[0]))
        key = create_key(project)
    port = _free_port()
    env = {**os.environ, "KEEL_TEST_FAULT": "badshadow"}
    serve = [sys.executable, "-m", "keel", "serve", "--port", str(port), "-p", str(project_dir)]
    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            _wait_ready(http, 90)
            time.sleep(1.5)  # the shadow is loaded by the first registry poll
            bodies = []
            for i in range(100):
                row = {"tenure": 12, "spend": 50.0, "visits": i % 30, "customer_id": f"c{i}"}
                response = http.post("/v1/predict", json={"instance": row}, headers=auth(key))
                bodies.append(response.json())
    finally:
        stop(server)
    answers = [body["predictions"][0] for body in bodies]
    assert all(a["model_version"] == "churn@1" and a["fallback"] is None for a in answers)
    assert max(body["latency_ms"] for body in bodies) < 1000
    with Project.open(project_dir) as project:
        from keel.monitoring.log import PredictionLog

        frame = PredictionLog.for_project(project).read()
    assert (frame["route"] == "shadow").any()
