"""`keel worker --metrics-port`: /healthz and /readyz beside /metrics, for Kubernetes probes.

``unready`` is the pure decision; the processes are real workers on loopback.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from keel.monitoring.gauges import unready

from ..helpers import die_with_parent, free_port, keel


@contextmanager
def running_worker(root: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``keel worker ARGS --project ROOT`` until the block ends, stopped by its pid."""
    command = [sys.executable, "-m", "keel", "worker", *args, "--project", str(root)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=die_with_parent
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(30)
        assert process.stderr is not None
        process.stderr.close()


def wait_for(
    url: str, process: subprocess.Popen[bytes], done: Callable[[httpx.Response], bool]
) -> httpx.Response:
    """GET ``url`` until ``done`` says so of the answer (60 s at most); the last answer."""
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "the worker exited"
        try:
            response = httpx.get(url, timeout=2)
            if done(response) or time.monotonic() > deadline:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("cycled_at", "store_ok", "reason"),
    [
        (None, False, "no cycle has finished yet"),
        (95.0, False, "the last cycle could not read the metadata store"),
        (70.0, True, None),  # 30 s ago: exactly 3 intervals of 10 s
        (69.0, True, "the last cycle finished 31 s ago, more than 3 intervals of 10 s"),
    ],
)
def test_readiness_needs_a_recent_cycle_that_read_the_store(
    cycled_at: float | None, store_ok: bool, reason: str | None
) -> None:
    """At t=100 s with a 10 s schedule: ready while the last cycle ended at most 3 intervals
    ago and read the store; otherwise the reason says which."""
    assert unready(100.0, cycled_at, store_ok, 10.0, 3) == reason


def test_an_unreachable_store_makes_readyz_503_while_healthz_says_alive(tmp_path: Path) -> None:
    """A worker whose PostgreSQL refuses connections is alive (/healthz 200) but not ready:
    /readyz answers 503 naming the store, and /metrics shows the failed cycle."""
    dead = free_port()
    (tmp_path / "keel.yaml").write_text(f"name: w\nstore: postgresql://k@127.0.0.1:{dead}/k\n")
    port = free_port()
    with running_worker(tmp_path, "--every", "1s", "--metrics-port", str(port)) as worker:
        base = f"http://127.0.0.1:{port}"
        ready = wait_for(f"{base}/readyz", worker, lambda r: "no cycle" not in r.text)
        alive = httpx.get(f"{base}/healthz")
        metrics = httpx.get(f"{base}/metrics").text
    assert ready.status_code == 503
    assert ready.json() == {
        "ready": False,
        "reason": "the last cycle could not read the metadata store",
    }
    assert alive.status_code == 200
    assert "keel_worker_cycle_ok 0.0" in metrics


def test_a_metrics_port_in_use_is_one_sentence(project_dir: Path) -> None:
    """--metrics-port on a port something listens on: exit 1, one sentence, no traceback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        result = keel("worker", "--metrics-port", str(taken), "-p", str(project_dir))
    assert result.returncode == 1
    message = f"--metrics-port cannot listen on 127.0.0.1:{taken}: the port is already in use"
    assert message in result.stderr
    assert "Traceback" not in result.stderr
