"""Workers die with their supervisor: `kill -9` of `keel serve --workers 2` frees the port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keel.monitoring.log import PredictionLog
from keel.project import Project
from tests.helpers import free_port
from tests.serving.helpers import (
    GOOD,
    auth,
    create_key,
    fitted_model,
    register_model,
    write_config,
)
from tests.serving.slow_model import SlowModel
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


@dataclass
class Supervised:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    key: str
    root: Path
    workers: set[int]  # the supervisor's children once it is ready

    def kill_9_and_wait(self) -> set[int]:
        """SIGKILL the supervisor; the workers still running 10 s later."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        deadline = time.monotonic() + 10
        while any(map(running, self.workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return set(filter(running, self.workers))


@contextmanager
def supervised(tmp_path: Path, slow_s: float = 0) -> Iterator[Supervised]:
    """`keel serve --workers 2` on a free loopback port, ready; no process outlives it."""
    root = tmp_path / "project"
    root.mkdir()
    write_config(root, "rate_limit: 1000/second\ntimeout_ms: 10000")
    with Project.open(root) as project:
        register_model(project, tmp_path, model=SlowModel(fitted_model()[0]))
        key = create_key(project)
    port = free_port()
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root)]
    command += ["--port", str(port), "--workers", "2"]
    env = {**ENV, "KEEL_TEST_SLOW_S": str(slow_s)}
    with (tmp_path / "stderr").open("wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    server = Supervised(process, f"http://127.0.0.1:{port}", port, key, root, set())
    try:
        wait_ready(server.url, process)
        server.workers = children(process.pid)
        yield server
    finally:
        for pid in filter(running, server.workers):  # none should be left; never leak one
            os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait(10)


def predict(url: str, key: str) -> str:
    """One prediction on a new connection (so both workers answer some); its id."""
    with httpx.Client(base_url=url, headers=auth(key), timeout=30) as fresh:
        reply = fresh.post("/v1/predict", json={"instance": GOOD})
    assert reply.status_code == 200
    return str(reply.json()["predictions"][0]["prediction_id"])


def logged(root: Path) -> set[str]:
    with Project.open(root) as project, PredictionLog.for_project(project) as log:
        return set(log.read()["prediction_id"])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists children under /proc")
def test_kill_9_of_the_supervisor_ends_every_worker_and_keeps_the_log(tmp_path: Path) -> None:
    """SIGKILL the parent of two workers: within 10 s no worker runs, the port binds again,
    and every prediction answered before the kill is in the prediction log."""
    with supervised(tmp_path) as server:
        answered = {predict(server.url, server.key) for _ in range(20)}
        left = server.kill_9_and_wait()
    assert len(server.workers) >= 2 and not left
    assert port_free(server.port)
    assert answered <= logged(server.root)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists children under /proc")
def test_a_request_in_flight_when_the_supervisor_is_killed_is_answered_and_logged(
    tmp_path: Path,
) -> None:
    """Workers leave by the graceful path: a request the model is still working on when the
    supervisor gets SIGKILL is answered 200 and is in the prediction log."""
    with supervised(tmp_path, slow_s=1.5) as server, ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(predict, server.url, server.key)
        time.sleep(0.7)  # the worker is now waiting on the 1.5 s model
        left = server.kill_9_and_wait()
        prediction_id = in_flight.result(30)
    assert not left
    assert prediction_id in logged(server.root)


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
