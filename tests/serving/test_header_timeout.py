"""Slow request headers time out: clients trickling them a byte a second are disconnected
after serving.header_timeout, while other clients are answered all along."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keel.project import Project
from tests.helpers import free_port
from tests.serving.helpers import register_model, write_config
from tests.serving.test_process import wait_ready

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
TIMEOUT_S = 2.0
SLACK_S = 4.0
# a request whose headers never end: the server would wait for them forever
NEVER_ENDING = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 200


@dataclass
class Trickle:
    closed_after: list[float]  # seconds from the first byte until the server closed each
    still_open: int
    answers: list[int]  # status codes of the normal requests made meanwhile


def _closed(connection: socket.socket) -> bool:
    try:
        return connection.recv(4096) == b""
    except OSError:
        return True


def trickle(port: int, count: int = 50, seconds: float = TIMEOUT_S + SLACK_S + 2) -> Trickle:
    """Open ``count`` connections that send one header byte a second for up to ``seconds``,
    and once a second send a normal request on a fresh connection."""
    url = f"http://127.0.0.1:{port}/healthz"
    open_ = {socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)}
    started = time.monotonic()
    closed_after: list[float] = []
    answers: list[int] = []
    tick = 0
    try:
        while open_ and time.monotonic() - started < seconds:
            for connection in list(open_):
                with contextlib.suppress(OSError):  # closed by the server: recv says so
                    connection.sendall(NEVER_ENDING[tick : tick + 1])
            with httpx.Client() as fresh:
                answers.append(fresh.get(url, timeout=5).status_code)
            tick += 1
            while (wait := started + tick - time.monotonic()) > 0 and open_:
                readable, _, _ = select.select(list(open_), [], [], wait)
                for connection in readable:
                    if _closed(connection):
                        closed_after.append(time.monotonic() - started)
                        open_.discard(connection)
                        connection.close()
        return Trickle(closed_after, len(open_), answers)
    finally:
        for connection in open_:
            connection.close()


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A `keel serve` process with serving.header_timeout: 2s."""
    root = tmp_path_factory.mktemp("headers") / "project"
    root.mkdir()
    write_config(root, f"rate_limit: 1000/second\nheader_timeout: {TIMEOUT_S}s")
    with Project.open(root) as project:
        register_model(project, root.parent)
    port = free_port()
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        yield port
    finally:
        process.kill()
        process.wait(30)
        assert process.stderr is not None
        process.stderr.close()


@pytest.mark.slow
def test_fifty_slowloris_connections_are_closed_while_others_are_answered(port: int) -> None:
    """50 connections trickling headers are closed after header_timeout (not before), and a
    normal request on a fresh connection is answered 200 every second meanwhile."""
    result = trickle(port)
    assert result.still_open == 0 and len(result.closed_after) == 50
    assert min(result.closed_after) >= TIMEOUT_S - 0.5
    assert max(result.closed_after) <= TIMEOUT_S + SLACK_S
    assert len(result.answers) >= 2 and set(result.answers) == {200}


def test_the_next_request_on_a_kept_alive_connection_is_timed_too(port: int) -> None:
    """After one answered request, headers of the next one trickled on the same connection
    are cut off after header_timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert connection.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(TIMEOUT_S + 1)  # idle between requests: keep_alive's business, not this
        started = time.monotonic()
        closed = False
        for byte in NEVER_ENDING[: int(TIMEOUT_S + SLACK_S)]:
            connection.sendall(bytes([byte]))
            readable, _, _ = select.select([connection], [], [], 1)
            if readable and _closed(connection):
                closed = True
                break
    assert closed
    assert TIMEOUT_S - 0.5 <= time.monotonic() - started <= TIMEOUT_S + SLACK_S


H11_SERVER = textwrap.dedent(
    """
    import sys
    import uvicorn
    from keel.serving.headers import H11HeaderTimeout

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    uvicorn.run(app, port=int(sys.argv[1]), http=H11HeaderTimeout, log_level="warning")
    """
)


@pytest.mark.slow
def test_the_h11_protocol_times_headers_too(tmp_path: Path) -> None:
    """Without httptools uvicorn parses with h11: its variant closes trickling connections."""
    port = free_port()
    env = {**ENV, "KEEL_HEADER_TIMEOUT_S": str(TIMEOUT_S)}
    command = [sys.executable, "-c", H11_SERVER, str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        result = trickle(port, count=10)
    finally:
        process.kill()
        process.wait(30)
        assert process.stderr is not None
        process.stderr.close()
    assert result.still_open == 0
    assert TIMEOUT_S - 0.5 <= min(result.closed_after) <= max(result.closed_after)
    assert max(result.closed_after) <= TIMEOUT_S + SLACK_S
    assert set(result.answers) == {200}


def test_serve_refuses_a_header_timeout_of_zero_in_one_sentence(project_dir: Path) -> None:
    """serving.header_timeout: 0s would close every connection: `keel serve` says so and stops."""
    from typer.testing import CliRunner

    from keel.cli.main import app

    (project_dir / "keel.yaml").write_text("name: t\nserving: {header_timeout: 0s}\n")
    with socket.socket() as taken:  # should the setting pass, serving fails at once, not hang
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(app, ["serve", "--project", str(project_dir), "--port", port])
    message = str(result.exception)
    assert result.exit_code == 1 and "header_timeout" in message and "10s" in message
    assert "\n" not in message.strip()
