"""A real server process on loopback: a slow client, and SIGTERM with a request in flight.

The tests in this module share one server; the SIGTERM test ends it and runs last.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.monitoring.log import PredictionLog
from keel.project import Project
from tests.helpers import free_port
from tests.serving.helpers import GOOD, create_key, fitted_model, register_model, write_config
from tests.serving.slow_model import SlowModel

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    key: str
    root: Path


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("served") / "project"
    root.mkdir()
    write_config(root, "timeout_ms: 10000\nbody_timeout: 1s\nrate_limit: 1000/second")
    with Project.open(root) as project:
        register_model(project, root.parent, model=SlowModel(fitted_model()[0]))
        key = create_key(project)
    port = free_port()
    env = {
        **os.environ,
        "KEEL_TEST_SLOW_S": "0.8",
        "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}",
    }
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield Server(process, url, port, key, root)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


def test_a_client_that_sends_its_body_too_slowly_gets_408(server: Server) -> None:
    """Headers promise 100 bytes, 10 arrive: after serving.body_timeout the server answers 408."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        head = (
            "POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {server.key}\r\nContent-Length: 100\r\n\r\n"
        )
        connection.sendall(head.encode() + b'{"instance')
        started = time.monotonic()
        reply = connection.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408")
    assert 0.5 < time.monotonic() - started < 8


def test_an_idle_connection_outlives_the_clients_own_keep_alive(server: Server) -> None:
    """A connection idle for 6 s still answers: clients (httpx: 5 s) give it up first.

    A server that closed idle connections at 5 s, as uvicorn does by default, would race a
    client sending its next request at that moment; the quickstart met exactly that.
    """
    request = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request)
        assert _whole_response(connection).startswith(b"HTTP/1.1 200")
        time.sleep(6)
        connection.sendall(request)
        assert _whole_response(connection).startswith(b"HTTP/1.1 200")


def _whole_response(connection: socket.socket) -> bytes:
    """One HTTP response read whole (head and Content-Length body), however the bytes
    arrive, so the next read starts at the next response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = connection.recv(4096)
        assert chunk, "the server closed the connection"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_sigterm_finishes_the_request_in_flight_flushes_the_log_and_exits_0(server: Server) -> None:
    """SIGTERM mid-request: new connections are refused, the request in flight gets its 200,
    the process exits 0 and the prediction log holds the answer."""
    result: dict[str, Any] = {}

    def call() -> None:
        headers = {"Authorization": f"Bearer {server.key}"}
        body = {"instance": GOOD}
        result["response"] = httpx.post(
            f"{server.url}/v1/predict", json=body, headers=headers, timeout=30
        )

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.4)  # the request is now waiting on the 0.8 s model
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.15)
    with pytest.raises(httpx.ConnectError):  # no longer accepting
        httpx.get(f"{server.url}/healthz", timeout=2)
    worker.join(30)
    code = server.process.wait(30)
    response = result["response"]
    assert response.status_code == 200 and code == 0
    prediction_id = response.json()["predictions"][0]["prediction_id"]
    with Project.open(server.root) as project, PredictionLog.for_project(project) as log:
        assert prediction_id in set(log.read()["prediction_id"])


_PREDICTED = (
    'keel_requests_total{fallback="",model_version="churn@1",route="/v1/predict",status="200"}'
)


def _metrics_once_counted(url: str, headers: dict[str, str], sent: int) -> str:
    """/metrics once it counts ``sent`` predictions, or as it is after 10 s: a worker counts
    a request after its response is sent, so the last one may land a moment later."""
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(f"{url}/metrics", headers=headers).text
        if f"{_PREDICTED} {sent}.0" in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


@pytest.mark.slow
def test_metrics_sum_over_several_workers(tmp_path: Path) -> None:
    """With --workers 2, /metrics counts every request, whichever worker answered it."""
    root = tmp_path / "project"
    root.mkdir()
    write_config(root, "rate_limit: 1000/second\ntimeout_ms: 10000")  # no fallback under load
    with Project.open(root) as project:
        register_model(project, tmp_path)
        key = create_key(project, "admin")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root)]
    command += ["--port", str(port), "--workers", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        wait_ready(url, process)
        pids: set[int] = set()
        sent = 0
        while sent < 24 or (len(pids) < 2 and sent < 200):  # until both workers answered
            with httpx.Client(base_url=url, headers=headers) as fresh:  # a new connection each
                assert fresh.post("/v1/predict", json={"instance": GOOD}).status_code == 200
                pids.add(fresh.get("/v1/status").json()["pid"])
            sent += 1
        text = _metrics_once_counted(url, headers, sent)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()
    assert f"{_PREDICTED} {sent}.0" in text
    assert len(pids) == 2 and code == 0
