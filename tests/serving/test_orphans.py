"""Workers die with their supervisor: `kill -9` of `keel serve --workers 2` frees the port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from keel.monitoring.log import PredictionLog
from keel.project import Project
from tests.helpers import free_port
from tests.serving.helpers import GOOD, auth, create_key, register_model, write_config
from tests.serving.test_process import wait_ready

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}


def children(pid: int) -> set[int]:
    """The pids of ``pid``'s children, as Linux lists them under /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie no one has reaped yet has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def port_free(port: int) -> bool:
    """Whether a listener can bind ``port`` on loopback now (past TIME_WAIT, as servers do)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists children under /proc")
def test_kill_9_of_the_supervisor_ends_every_worker_and_keeps_the_log(tmp_path: Path) -> None:
    """SIGKILL the parent of two workers: within 10 s no worker runs, the port binds again,
    and every prediction answered before the kill is in the prediction log."""
    root = tmp_path / "project"
    root.mkdir()
    write_config(root, "rate_limit: 1000/second\ntimeout_ms: 2000")
    with Project.open(root) as project:
        register_model(project, tmp_path)
        key = create_key(project)
    port = free_port()
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root)]
    command += ["--port", str(port), "--workers", "2"]
    with (tmp_path / "stderr").open("wb") as stderr:
        process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    workers: set[int] = set()
    try:
        wait_ready(url, process)
        workers = children(process.pid)
        answered = []
        for _ in range(20):
            with httpx.Client(base_url=url, headers=auth(key)) as fresh:  # a new connection each
                reply = fresh.post("/v1/predict", json={"instance": GOOD})
            assert reply.status_code == 200
            answered.append(reply.json()["predictions"][0]["prediction_id"])
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 10
        while any(map(running, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {pid for pid in workers if running(pid)}
    finally:
        for pid in filter(running, workers):  # none should be left; never leak one
            os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait(10)
    assert len(workers) >= 2 and not left
    assert port_free(port)
    with Project.open(root) as project, PredictionLog.for_project(project) as log:
        assert set(answered) <= set(log.read()["prediction_id"])


GRANDCHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from keel.serving.orphan import watch_parent

    folder = Path(sys.argv[1])
    def stop(sig, frame):
        (folder / "terminated").write_text(str(os.getpid()))
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    parent = os.getppid()
    (folder / "watching").write_text(str(os.getpid()))
    watch_parent(parent, 0.1)
    time.sleep(60)
    """
)

PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
    time.sleep(60)
    """
)


def test_the_portable_watchdog_terminates_a_process_whose_parent_died(tmp_path: Path) -> None:
    """Without the Linux hook, the watchdog alone sends SIGTERM once the parent is killed."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, GRANDCHILD, str(tmp_path)], env=ENV)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "watching").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "watching").exists()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while not (tmp_path / "terminated").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        parent.kill()
        parent.wait(10)
    assert (tmp_path / "terminated").read_text() == (tmp_path / "watching").read_text()
