"""JSON logs from a real ``keel serve`` process, each request's lines carrying its id.

One server with ``serving.log_format: json`` and two worker processes (each sets up its
own logging) answers a few requests and is stopped with SIGTERM; the tests read what its
supervisor and workers wrote on stderr. Its rate-limit storage points at a closed
port, so the gateway logs a warning while it handles each request with a key: a line that
Keel itself logs for a request, beside uvicorn's access line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.errors import ConfigError
from keel.project import Project
from keel.serverlogs import request_id_for
from tests.helpers import free_port
from tests.serving.helpers import GOOD, auth, create_key, register_model, write_config

pytestmark = pytest.mark.timeout(600)  # two workers start on a machine others share

REPO = Path(__file__).resolve().parents[1]
SENT_ID = "req-7f3a.42"


@dataclass
class Run:
    """What the server answered and the JSON lines it wrote on stderr."""

    answers: dict[str, httpx.Response]
    stderr: list[str]

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr]

    def access(self, request_id: str) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line["logger"] == "uvicorn.access" and line["request_id"] == request_id
        ]


def _wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited during start-up"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become ready")


def _traffic(url: str, key: str) -> dict[str, httpx.Response]:
    body = {"instances": [GOOD]}
    with httpx.Client(base_url=url, timeout=30) as http:
        return {
            "sent": http.post(
                "/v1/predict", json=body, headers={**auth(key), "X-Request-ID": SENT_ID}
            ),
            "none": http.get("/healthz"),
            "other": http.get("/healthz"),
            "insane": http.get("/healthz", headers={"X-Request-ID": "has space " + "x" * 200}),
        }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("json-logs") / "project"
    root.mkdir()
    closed = free_port()  # nothing listens: the rate-limit storage is unreachable
    write_config(
        root,
        f"log_format: json\nrate_limit: 1000/second\nrate_limit_url: redis://127.0.0.1:{closed}/0",
    )
    with Project.open(root) as project:
        register_model(project, root.parent)
        key = create_key(project)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    command += ["--workers", "2"]
    stderr_path = root.parent / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, process)
            answers = _traffic(url, key)
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(30)
    yield Run(answers, stderr_path.read_text().splitlines())


def test_every_line_the_server_writes_on_stderr_is_a_json_object(run: Run) -> None:
    """From start-up to shutdown, each stderr line parses as one JSON object with a level,
    a logger and a message."""
    assert len(run.stderr) >= 6  # start-up, a warning, four access lines, shutdown
    for line in run.stderr:
        record = json.loads(line)
        assert isinstance(record, dict)
        assert {"level", "logger", "message", "time"} <= record.keys()


def test_a_request_sent_with_an_id_gets_it_back_and_its_access_line_carries_it(run: Run) -> None:
    """X-Request-ID comes back in the response, and the request's access line has it as
    request_id, with the method, path and status as fields."""
    assert run.answers["sent"].status_code == 200
    assert run.answers["sent"].headers["x-request-id"] == SENT_ID
    [line] = run.access(SENT_ID)
    assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/predict", 200)


def test_a_line_keel_logs_while_handling_a_request_carries_the_requests_id(run: Run) -> None:
    """The gateway's warning about unreachable rate-limit storage, logged while the
    request was handled, has that request's id."""
    warnings = [line for line in run.lines() if "rate limit storage" in line["message"]]
    assert warnings
    assert {line["request_id"] for line in warnings} == {SENT_ID}


def test_a_request_without_an_id_gets_a_fresh_one_in_its_answer_and_its_line(run: Run) -> None:
    """Two requests without X-Request-ID get two different ids, each returned in the
    response and found on that request's access line."""
    ids = [run.answers[name].headers["x-request-id"] for name in ("none", "other")]
    assert ids[0] != ids[1]
    for request_id in ids:
        [line] = run.access(request_id)
        assert line["path"] == "/healthz"


def test_an_id_that_is_not_a_short_token_is_replaced_not_echoed(run: Run) -> None:
    """An X-Request-ID with spaces, 210 characters long, never reaches a log line: the
    request gets a fresh id instead."""
    returned = run.answers["insane"].headers["x-request-id"]
    assert " " not in returned and len(returned) <= 128
    [line] = run.access(returned)
    assert line["path"] == "/healthz"


def test_lines_logged_outside_any_request_have_a_null_request_id(run: Run) -> None:
    """Start-up and shutdown lines belong to no request: their request_id is null."""
    startup = [line for line in run.lines() if "startup complete" in line["message"]]
    assert startup
    assert all(line["request_id"] is None for line in startup)


@pytest.mark.parametrize(
    ("presented", "kept"),
    [
        (b"abc-123", True),
        (b"0f8e2c1a-5a8b-4e7b-9a51-2f7d0b8c9e11", True),
        (b"trace/1:span@2+x=y_z.v", True),
        (b"", False),
        (b"has space", False),
        (b'quote"d', False),
        (b"x" * 129, False),
        ("é".encode(), False),
        (None, False),
    ],
)
def test_which_presented_ids_are_kept(presented: bytes | None, kept: bool) -> None:
    """A presented id is kept when it is 1-128 characters of letters, digits and
    ``._:@/+=-``; otherwise a fresh 32-hex-digit id stands in."""
    chosen = request_id_for(presented)
    if kept:
        assert presented is not None and chosen == presented.decode()
    else:
        assert len(chosen) == 32 and int(chosen, 16) >= 0


def test_an_unknown_log_format_is_a_config_error_naming_the_choices(project_dir: Path) -> None:
    """serving.log_format: xml is refused at load with the line and the two choices."""
    write_config(project_dir, "log_format: xml")
    with pytest.raises(
        ConfigError, match=r"keel\.yaml:3:\d+: serving\.log_format: .*'text' or 'json'"
    ):
        Project.open(project_dir)


def test_setting_up_json_logs_leaves_keel_serving_unimported() -> None:
    """A worker builds its log handler before it answers its supervisor's health pings;
    importing keel.serving there (seconds) would get workers killed as unresponsive."""
    code = (
        "import logging.config, sys\n"
        "from keel.serverlogs import server_logging\n"
        "logging.config.dictConfig(server_logging('json')['log_config'])\n"
        "print(sorted(name for name in sys.modules if name.startswith('keel.serving')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
