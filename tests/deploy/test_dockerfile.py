"""The Dockerfile, parsed: one slim, non-root image whose entrypoint is keel.

No container engine runs here; ``dockerfile-parse`` reads the instructions, the default
command is checked against the real CLI, and the health check's own command is run
against a loopback server.
"""

from __future__ import annotations

import http.server
import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.helpers import K8S, REPO, documents, keel_help
from tests.helpers import free_port

PARSED = DockerfileParser(path=str(REPO / "Dockerfile"))
STAGES: list[list[dict[str, Any]]] = []
for _instruction in PARSED.structure:
    if _instruction["instruction"] == "FROM":
        STAGES.append([])
    if STAGES:
        STAGES[-1].append(_instruction)
FINAL = STAGES[-1]


def _values(instruction: str, stage: list[dict[str, Any]] = FINAL) -> list[str]:
    return [item["value"] for item in stage if item["instruction"] == instruction]


def _exec_form(value: str) -> list[str]:
    """An instruction's JSON (exec form) argument list; shell form fails the test."""
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"not exec form: {value}"
    return parsed


def _cmd() -> list[str]:
    [value] = _values("CMD")
    return _exec_form(value)


def _served_port() -> str:
    return _cmd()[_cmd().index("--port") + 1]


def _healthcheck() -> list[str]:
    [value] = _values("HEALTHCHECK")
    _, _, command = value.partition("CMD")
    return _exec_form(command.strip())


def test_every_stage_builds_on_a_slim_python_image() -> None:
    """Both stages start from python:*-slim."""
    bases = [item["value"].split()[0] for item in PARSED.structure if item["instruction"] == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.\d+-slim", base) for base in bases)


def test_the_image_runs_as_the_non_root_user_the_kubernetes_pods_expect() -> None:
    """The final USER is a numeric, non-zero uid: the one the pods' runAsUser names."""
    user = _values("USER")[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0
    run_as = {
        doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
        for path in K8S.glob("*.yaml")
        for doc in documents(path)
        if "template" in doc.get("spec", {})
    }
    assert run_as == {int(user)}


def test_the_entrypoint_is_keel_and_the_default_command_is_serve() -> None:
    """ENTRYPOINT ["keel"], so `docker run keel worker` runs the worker; the default command
    is `keel serve` with flags the real CLI accepts, on the port the image exposes."""
    [entrypoint] = _values("ENTRYPOINT")
    assert _exec_form(entrypoint) == ["keel"]
    assert _cmd()[0] == "serve"
    keel_help(_cmd())
    assert _values("EXPOSE") == [_served_port()]


def test_the_default_command_serves_the_project_in_the_working_directory() -> None:
    """--project names the image's WORKDIR, where deploy/ mounts keel.yaml."""
    assert _cmd()[_cmd().index("--project") + 1] == _values("WORKDIR")[-1] == "/project"


def test_the_health_check_asks_healthz_on_the_served_port() -> None:
    """HEALTHCHECK requests /healthz on loopback at the port serve listens on."""
    command = " ".join(_healthcheck())
    assert f"http://127.0.0.1:{_served_port()}/healthz" in command


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Health", (_Health,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def _run_healthcheck(port: int) -> int:
    command = [
        part.replace(f"127.0.0.1:{_served_port()}", f"127.0.0.1:{port}") for part in _healthcheck()
    ]
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:]], capture_output=True, timeout=30
    ).returncode


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_health_check_command_passes_only_when_healthz_answers_200(
    health_server: tuple[int, type[_Health]], status: int, healthy: bool
) -> None:
    """Run as written (port moved to a free one): exit 0 on a 200, non-zero on a 503."""
    port, handler = health_server
    handler.status = status
    assert (_run_healthcheck(port) == 0) is healthy


def test_the_health_check_command_fails_when_nothing_listens() -> None:
    """A dead server (connection refused) fails the check."""
    assert _run_healthcheck(free_port()) != 0


def test_the_image_installs_the_postgres_redis_and_s3_extras() -> None:
    """The install names the postgres, redis and s3 extras, each defined in pyproject."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    installs = [cmd for cmd in _values("RUN") if cmd.startswith("pip install")]
    [named] = re.findall(r"\[([a-z0-9,]+)\]", " ".join(installs))
    assert set(named.split(",")) == {"postgres", "redis", "s3"}
    assert set(named.split(",")) <= extras.keys()


def test_dockerignore_lets_in_what_the_build_copies() -> None:
    """.dockerignore excludes everything but the files the build stage copies."""
    kept = {
        line[1:] for line in (REPO / ".dockerignore").read_text().splitlines() if line[:1] == "!"
    }
    copied = {source for value in _values("COPY", STAGES[0]) for source in shlex.split(value)[:-1]}
    assert copied == kept
