"""``serving.drain``: after SIGTERM a real `keel serve` fails readiness but keeps answering,
so a load balancer's health checks take it out before its port closes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from keel.project import Project
from tests.delivery.helpers import serve
from tests.helpers import free_port
from tests.serving.helpers import GOOD, auth, create_key, register_model, write_config


def test_during_the_drain_readiness_fails_predictions_are_answered_then_it_exits_0(
    project_dir: Path, tmp_path: Path
) -> None:
    """SIGTERM with drain 3s: /readyz answers 503 (draining) while /v1/predict still
    answers 200; the process then exits 0 without another signal."""
    write_config(project_dir, "drain: 3s\nrate_limit: 1000/second")
    with Project.open(project_dir) as project:
        register_model(project, tmp_path)
        key = create_key(project)
    port = free_port()
    process = serve(project_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not _ready(url) and time.monotonic() < deadline:
            assert process.poll() is None, "keel serve exited before it was ready"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        readiness = httpx.get(f"{url}/readyz", timeout=5)
        predicted = httpx.post(
            f"{url}/v1/predict", json={"instance": GOOD}, headers=auth(key), timeout=5
        )
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (readiness.status_code, readiness.json()["draining"]) == (503, True)
    assert predicted.status_code == 200
    assert code == 0


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
