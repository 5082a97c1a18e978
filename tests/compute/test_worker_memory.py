"""A partition that needs more memory than a Dask worker has: the worker's nanny kills it
at its ``--memory-limit``, Dask runs the task again on the restarted worker, then gives up
(KilledWorker); ``keel ingest`` says so in one sentence naming that file and the limit,
and publishes nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.data.catalog import Catalog
from keel.errors import ComputeError
from keel.project import Project
from tests.compute.conftest import DASK, REPO
from tests.helpers import die_with_parent, free_port

LIMIT = 300_000_000
"""The worker's memory limit in bytes (``--memory-limit 300MB``)."""


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    quiet = subprocess.DEVNULL
    return subprocess.Popen(
        command, stdout=quiet, stderr=quiet, env=env, preexec_fn=die_with_parent
    )


@pytest.fixture
def small_worker() -> Iterator[str]:
    """A scheduler that gives a task up after its second worker death, and one worker
    (with its nanny) limited to 300 MB; the scheduler's address."""
    from distributed import Client

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "OMP_NUM_THREADS": "1",
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
    }
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    worker = [str(DASK), "worker", address, "--nthreads", "1", "--memory-limit", str(LIMIT)]
    processes = [
        _start([*scheduler, "--no-dashboard"], env),
        _start([*worker, "--host", "127.0.0.1", "--no-dashboard"], env),
    ]
    try:
        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _project(root: Path, address: str) -> list[Path]:
    """A project whose partitioned source is a small file and a file of 2M rows of
    192-character strings (about 400 MB once read, over the worker's limit)."""
    folder = root / "data" / "events"
    folder.mkdir(parents=True)
    (root / "keel.yaml").write_text(
        "name: big\n"
        f"compute: {{engine: dask, address: '{address}', connect_timeout: 30s}}\n"
        "sources:\n"
        "  events:\n"
        "    kind: parquet\n"
        "    path: data/events/\n"
        "    partitioned: true\n"
        "    checks: {columns: {n: {type: int, range: [0, 100]}}}\n"
    )
    small, huge = folder / "a-small.parquet", folder / "b-huge.parquet"
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT range AS n, 'x' AS s FROM range(100)) TO '{small}'")
        rows = "SELECT range AS n, repeat(md5(range::VARCHAR), 6) AS s FROM range(2000000)"
        con.execute(f"COPY ({rows}) TO '{huge}'")
    return [small, huge]


def test_a_partition_over_the_worker_memory_limit_is_named(
    small_worker: str, tmp_path: Path
) -> None:
    """The huge partition kills the 300 MB worker twice: ``keel ingest`` exits 1 with one
    sentence (a ComputeError, which keel prints without a traceback) naming
    data/events/b-huge.parquet and the limit (286.10 MiB);
    no version is published and no partition is copied into the artifact store."""
    root = tmp_path / "project"
    files = _project(root, small_worker)
    done = CliRunner().invoke(app, ["ingest", "--project", str(root)])
    assert done.exit_code == 1 and isinstance(done.exception, ComputeError), repr(done.exception)
    said = str(done.exception)
    assert "data/events/b-huge.parquet killed every Dask worker that ran it" in said, said
    assert "a-small.parquet" not in said
    assert f"limited to {LIMIT / 2**20:.2f} MiB" in said
    assert "2 tries" in said and "\n" not in said
    with Project.open(root) as project:
        assert Catalog(project.store).versions("events") == []
        for file in files:
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            assert not project.artifacts.exists(digest)
