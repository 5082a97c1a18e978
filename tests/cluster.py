"""A real Dask cluster on loopback for the tests that claim something about a cluster: one
scheduler and two workers, each a ``dask`` process started by pid and stopped with a
deadline. The session fixture ``cluster`` is shared by every folder's tests (a plugin of
tests/conftest.py), so one cluster serves a run that touches several of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import die_with_parent, free_port

REPO = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).with_name("dask")


@dataclass
class Cluster:
    """The scheduler's address and the processes behind it."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add_worker(self, seconds: float = 90) -> subprocess.Popen[bytes]:
        """One more ``dask worker``; returns once the scheduler counts it."""
        from distributed import Client

        with Client(self.address, timeout=seconds, set_as_default=False) as client:
            known = len(client.scheduler_info(n_workers=-1)["workers"])
            worker = _worker(self.address)
            self.workers.append(worker)
            client.wait_for_workers(known + 1, timeout=seconds)
        return worker

    def stop(self, deadline: float = 20) -> None:
        """SIGTERM every process, then SIGKILL whatever still runs after ``deadline`` s."""
        processes = [*self.workers, self.scheduler]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        ends = time.monotonic() + deadline
        for process in processes:
            try:
                process.wait(max(ends - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _environment() -> dict[str, str]:
    path = os.pathsep.join([str(REPO / "src"), str(REPO)])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _worker(address: str) -> subprocess.Popen[bytes]:
    command = [str(DASK), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
    quiet = subprocess.DEVNULL
    return subprocess.Popen(
        [*command, "--host", "127.0.0.1"],
        stdout=quiet,
        stderr=quiet,
        env=_environment(),
        preexec_fn=die_with_parent,
    )


def start_cluster(workers: int = 2, seconds: float = 90) -> Cluster:
    """``dask scheduler`` and ``workers`` x ``dask worker`` on free loopback ports; returns
    once the scheduler reports every worker."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = subprocess.DEVNULL
    scheduler = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=quiet,
        stderr=quiet,
        env=_environment(),
        preexec_fn=die_with_parent,
    )
    cluster = Cluster(address, scheduler)
    cluster.workers = [_worker(address) for _ in range(workers)]
    try:
        with Client(address, timeout=seconds, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=seconds)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """One cluster shared by the tests that only use it (none of them kills a worker)."""
    started = start_cluster()
    try:
        yield started
    finally:
        started.stop()
