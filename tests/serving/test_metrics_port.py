"""serving.metrics: a real `keel serve --workers 2` serves /metrics without a key on a port
of its own, the same counters the main port's admin /metrics shows, and nothing else.

The tests in this module share one server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keel.project import Project
from tests.helpers import die_with_parent, free_port, keel
from tests.serving.helpers import GOOD, auth, create_key, register_model, write_config
from tests.serving.test_process import wait_ready

REPO = Path(__file__).resolve().parents[2]
SENT = 12
pytestmark = pytest.mark.slow  # one two-worker server for the module


@dataclass
class Served:
    url: str
    metrics: str
    key: str


def _predictions(text: str) -> dict[tuple[str, ...], float]:
    """keel_requests_total samples of /v1/predict, by label values, parsed by prometheus_client."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "keel_requests_total" and sample.labels["route"] == "/v1/predict":
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Two workers, serving.metrics on a free loopback port, SENT predictions answered."""
    tmp = tmp_path_factory.mktemp("metrics-port")
    root = tmp / "project"
    root.mkdir()
    metrics_port = free_port()
    write_config(root, f"rate_limit: 1000/second\nmetrics: {{port: {metrics_port}}}")
    with Project.open(root) as project:
        register_model(project, tmp)
        key = create_key(project, "predict", "admin")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root)]
    command += ["--port", str(port), "--workers", "2"]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        for _ in range(SENT):
            with httpx.Client(base_url=url, headers=auth(key)) as fresh:  # either worker
                assert fresh.post("/v1/predict", json={"instance": GOOD}).status_code == 200
        yield Served(url, f"http://127.0.0.1:{metrics_port}", key)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        assert process.stderr is not None
        process.stderr.close()


def test_the_metrics_port_shows_the_admin_metrics_counters_without_a_key(served: Served) -> None:
    """A scrape without a key on the metrics port counts the same predictions, by the same
    labels, as the admin /metrics of the main port: every request both workers answered."""
    scraped = httpx.get(f"{served.metrics}/metrics")
    admin = httpx.get(f"{served.url}/metrics", headers=auth(served.key))
    assert scraped.status_code == admin.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert _predictions(scraped.text) == _predictions(admin.text)
    assert sum(_predictions(scraped.text).values()) == SENT


def test_the_main_port_s_metrics_still_needs_a_key(served: Served) -> None:
    """serving.metrics opens no door on the main port: /metrics without a key is 401."""
    assert httpx.get(f"{served.url}/metrics").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/predict"), ("GET", "/v1/predict"), ("GET", "/v1/status"), ("GET", "/ui/")],
)
def test_the_metrics_port_serves_nothing_else(served: Served, method: str, path: str) -> None:
    """The predict, status and dashboard routes are not found on the metrics port."""
    response = httpx.request(method, f"{served.metrics}{path}", json={"instance": GOOD})
    assert response.status_code == 404


def test_a_metrics_port_in_use_is_one_sentence(tmp_path: Path) -> None:
    """serving.metrics on a port something already listens on: keel serve exits 1 with one
    sentence naming the setting and the address, and no traceback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        write_config(tmp_path, f"metrics: {{port: {taken}}}")
        result = keel("serve", "--project", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 1
    message = f"serving.metrics cannot listen on 127.0.0.1:{taken}: the port is already in use"
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
