"""A real ``keel serve`` on loopback for the client tests, and tiny HTTP servers that
answer what a test scripts (429 storms, HTML pages, silence)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from keel.project import Project
from tests.helpers import free_port
from tests.serving.helpers import create_key, register_model, write_config
from tests.serving.test_process import wait_ready

REPO = Path(__file__).resolve().parents[2]
MAX_INSTANCES = 10
DROP = 0  # a Script status: read the request, then close the connection unanswered


@dataclass(frozen=True)
class Served:
    """A running keel serve: its URL, its project folder and keys by what they may do."""

    url: str
    root: Path
    keys: dict[str, str]


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """keel serve in a child process, with a registered model and a key per scope; one
    for the whole folder, since starting it costs seconds."""
    root = tmp_path_factory.mktemp("client") / "project"
    root.mkdir()
    write_config(
        root, f"rate_limit: 100000/second\ntimeout_ms: 5000\nmax_instances: {MAX_INSTANCES}"
    )
    with Project.open(root) as project:
        register_model(project, root.parent)
        keys = {
            "predict": create_key(project, "predict"),
            "feedback": create_key(project, "feedback"),
            "admin": create_key(project, "predict", "feedback", "admin"),
            "limited": create_key(project, "predict", rate_limit="2/minute"),
        }
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield Served(url, root, keys)
    finally:
        process.kill()
        process.wait(30)
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


@dataclass
class Script:
    """What a scripted server answers: ``answer(n)`` gives (status, headers, body) for the
    n-th request (0-based), status 0 meaning: close the connection without answering;
    ``seen`` records each request's arrival (monotonic seconds)."""

    answer: Callable[[int], tuple[int, dict[str, str], bytes]]
    seen: list[float] = field(default_factory=list)


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], str]]:
    """Start a real HTTP server on loopback that answers per a Script; yields a starter
    that returns its URL. Every server started is shut down after the test."""
    servers: list[ThreadingHTTPServer] = []

    def start(script: Script) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                script.seen.append(time.monotonic())
                status, headers, body = script.answer(len(script.seen) - 1)
                if status == DROP:
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in {**headers, "content-length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent() -> Iterator[tuple[str, list[socket.socket]]]:
    """A loopback port that accepts connections and reads, but never answers; yields its
    URL and the connections it accepted."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
