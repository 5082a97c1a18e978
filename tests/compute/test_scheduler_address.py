"""A compute.address that names no Dask scheduler: nothing listening there, something
that accepts the connection and never answers, an HTTP server, a Dask worker. A real
command (``keel data partitions``, in its own process) exits 1 with one sentence naming
the address, and no traceback, within 10 s of starting; its projects wait 2 s for the
scheduler, so that the command's own start (seconds on a loaded machine) fits in the 10 s.
The engine alone, with the default 5 s, gives up on the silent listener within 7 s. Each
listener is its own process (tests/compute/listener.py), stopped by pid."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from keel.compute.dask import DaskEngine, _distributed
from keel.errors import ComputeError
from keel.schema import ComputeConfig
from tests.compute.conftest import Cluster
from tests.helpers import die_with_parent, free_port, keel

LISTENER = Path(__file__).with_name("listener.py")

CONFIG = """\
name: events
compute:
  engine: dask
  address: {address}
  connect_timeout: 2s
sources:
  events:
    kind: parquet
    path: data/events/
    checks:
      columns:
        amount: {{type: float, range: [0, 100]}}
"""


@pytest.fixture
def events(tmp_path: Path) -> Path:
    """A project whose ``events`` source is two small Parquet files."""
    root = tmp_path / "project"
    folder = root / "data" / "events"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        pd.DataFrame({"amount": rng.uniform(0, 100, 20)}).to_parquet(folder / f"{name}.parquet")
    return root


def _listening(kind: str) -> Iterator[str]:
    """``listener.py kind`` started, its address yielded, then the process killed."""
    command = [sys.executable, str(LISTENER), kind]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent
    ) as process:
        try:
            assert process.stdout is not None
            port = int(process.stdout.readline())
            if kind == "http":
                _wait_for_http(f"http://127.0.0.1:{port}/")
            yield f"tcp://127.0.0.1:{port}"
        finally:
            process.kill()


def _wait_for_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=1).raise_for_status()
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def silent() -> Iterator[str]:
    """An address whose listener accepts connections and never writes a byte."""
    yield from _listening("silent")


@pytest.fixture
def http_server() -> Iterator[str]:
    """An address an HTTP server (uvicorn) answers."""
    yield from _listening("http")


@pytest.fixture
def worker(cluster: Cluster) -> str:
    """The address of one of the test cluster's Dask workers."""
    from distributed import Client

    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        return str(next(iter(client.scheduler_info(n_workers=-1)["workers"])))


def _partitions(project: Path, address: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``keel data partitions`` with compute.address set to ``address``, and its seconds."""
    (project / "keel.yaml").write_text(CONFIG.format(address=address))
    started = time.monotonic()
    done = keel("data", "partitions", "--source", "events", cwd=project, timeout=30)
    return done, time.monotonic() - started


def _assert_one_sentence(done: subprocess.CompletedProcess[str], address: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and address in lines[0], lines
    return lines[0]


def test_nothing_listening(events: Path) -> None:
    """A port nobody listens on: the sentence says no scheduler answered in 2 s."""
    address = f"tcp://127.0.0.1:{free_port()}"
    done, seconds = _partitions(events, address)
    said = _assert_one_sentence(done, address)
    assert "no Dask scheduler answered" in said and "within 2 s" in said
    assert seconds < 10


def test_a_listener_that_never_answers(events: Path, silent: str) -> None:
    """Something that accepts the connection and never writes (the client used to wait
    for its handshake forever): the same sentence, once the 2 s are up."""
    done, seconds = _partitions(events, silent)
    said = _assert_one_sentence(done, silent)
    assert "no Dask scheduler answered" in said and "within 2 s" in said
    assert 2 <= seconds < 10


def test_an_http_server(events: Path, http_server: str) -> None:
    """An HTTP server answers the handshake with an HTTP error, which used to end in a
    MemoryError or ValueError from reading it as Dask frames: one sentence, at once."""
    done, seconds = _partitions(events, http_server)
    said = _assert_one_sentence(done, http_server)
    assert "is not a Dask scheduler" in said
    assert seconds < 10


def test_a_dask_worker(events: Path, worker: str) -> None:
    """A worker's address (which used to end in a TypeError from the worker's identity):
    one sentence saying it is a worker."""
    done, seconds = _partitions(events, worker)
    said = _assert_one_sentence(done, worker)
    assert "is a Dask worker, not the scheduler" in said
    assert seconds < 10


def test_the_engine_gives_up_on_a_silent_listener_after_its_timeout(silent: str) -> None:
    """With the default compute.connect_timeout (5 s), ``DaskEngine.connect`` to the
    silent listener raises the sentence after 5 s and well before 10 (the library is
    imported before the clock starts)."""
    timeout = ComputeConfig().connect_timeout.total_seconds()
    _distributed()
    started = time.monotonic()
    with pytest.raises(ComputeError, match="no Dask scheduler answered"):
        DaskEngine.connect(silent, timeout)
    assert timeout <= time.monotonic() - started < timeout + 2


def test_the_check_uses_the_clients_security_loader(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site's ``distributed.client.security-loader`` (its TLS credentials) is asked for
    the address by the identity check as by the client, so a ``tls://`` scheduler is
    checked with the credentials the client will use: two calls, both for the address."""
    import dask

    log = tmp_path / "asked.txt"
    monkeypatch.setenv("KEEL_TEST_SECURITY_LOG", str(log))
    loader = "tests.compute.security_loader.load"
    with dask.config.set({"distributed.client.security-loader": loader}):
        engine = DaskEngine.connect(cluster.address, 30)
        engine.close()
    assert log.read_text().split() == [cluster.address, cluster.address]
