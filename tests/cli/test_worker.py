"""`keel worker` and `keel up` as real processes: cycles on schedule, clean exit on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from keel.monitoring.log import PredictionLog
from keel.project import Project

from ..helpers import free_port, keel


def _monitored_project(root: Path) -> Path:
    """A project whose log holds 300 predictions and whose reference is a CSV."""
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=500)}).to_csv(root / "ref.csv", index=False)
    (root / "keel.yaml").write_text("name: w\nmonitoring: {reference: ref.csv, window: 1d}\n")
    with Project.open(root) as project:
        log = PredictionLog.for_project(project)
        for value in rng.normal(size=300):
            log.record({"x": float(value)}, 0)
        log.close()
    return root


def _lines(process: subprocess.Popen[str], count: int, seconds: float = 60) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    assert process.stdout is not None
    while len(lines) < count and time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            lines.append(line)
    return lines


def test_worker_runs_cycles_and_stops_on_sigterm(project_dir: Path) -> None:
    """The worker reports a cycle per period and exits 0 when told to stop."""
    root = _monitored_project(project_dir)
    command = [sys.executable, "-m", "keel", "worker", "--every", "1s", "--project", str(root)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as worker:
        try:
            text = "".join(_lines(worker, 4))
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=60)
    assert code == 0
    assert text.count("drift: ") >= 2, text


def test_a_failing_cycle_does_not_end_the_worker(project_dir: Path) -> None:
    """Without a reference each cycle says why it was skipped, and the worker goes on."""
    command = [sys.executable, "-m", "keel", "worker", "--every", "0.5s", "--json"]
    with subprocess.Popen(
        [*command, "--project", str(project_dir)], stdout=subprocess.PIPE, text=True
    ) as worker:
        try:
            text = "".join(_lines(worker, 8))
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=60)
    first, _ = json.JSONDecoder().raw_decode(text)
    assert code == 0
    assert first["ok"] is False and "reference" in first["error"]


def test_up_serves_and_monitors_until_sigterm(project_dir: Path, tmp_path: Path) -> None:
    """`keel up` answers /readyz from its server child and stops both on SIGTERM."""
    from tests.serving.helpers import register_model

    root = _monitored_project(project_dir)
    with Project.open(root) as project:
        register_model(project, tmp_path)
    port = free_port()
    command = [sys.executable, "-m", "keel", "up", "--port", str(port), "--every", "1s"]
    with subprocess.Popen([*command, "--project", str(root)], stdout=subprocess.PIPE) as up:
        try:
            ready = False
            deadline = time.monotonic() + 90
            while not ready and time.monotonic() < deadline and up.poll() is None:
                try:
                    ready = httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
                except httpx.TransportError:
                    time.sleep(0.3)
        finally:
            up.send_signal(signal.SIGTERM)
            code = up.wait(timeout=90)
    assert ready
    assert code == 0


def test_up_killed_with_sigkill_leaves_no_server_on_its_port(
    project_dir: Path, tmp_path: Path
) -> None:
    """`kill -9` of `keel up` gives it no chance to stop its server child: the server sees
    its parent gone and shuts down by itself, freeing the port (checked by pid and by a
    connection that is refused)."""
    import psutil

    from tests.serving.helpers import register_model

    root = _monitored_project(project_dir)
    with Project.open(root) as project:
        register_model(project, tmp_path)
    port = free_port()
    command = [sys.executable, "-m", "keel", "up", "--port", str(port), "--every", "1s"]
    up = subprocess.Popen([*command, "--project", str(root)], stdout=subprocess.DEVNULL)
    servers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while not servers and time.monotonic() < deadline and up.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    servers = psutil.Process(up.pid).children()
            except httpx.TransportError:
                time.sleep(0.3)
        assert servers, "keel up never served"
        up.kill()
        up.wait(timeout=30)
        _, alive = psutil.wait_procs(servers, timeout=60)
        assert not alive, alive
        try:
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            raise AssertionError(f"port {port} still answers")
        except httpx.TransportError:
            pass
    finally:
        if up.poll() is None:
            up.kill()
        for server in servers:
            if server.is_running():
                server.kill()


def test_once_runs_one_cycle_and_says_whether_it_failed(project_dir: Path) -> None:
    """`keel worker --once` exits after one cycle: 1 with the reason when monitoring could
    not run (no reference yet), and the delivery step still reported."""
    result = keel("worker", "--once", "--json", "-p", str(project_dir))
    data = json.loads(result.stdout)
    assert result.returncode == 1
    assert data["ok"] is False and "reference" in data["error"]
    assert data["delivery"] == {}
    human = keel("worker", "--once", "-p", str(project_dir))
    assert human.returncode == 1 and "monitoring skipped" in human.stdout
