"""Schemathesis against a real `keel serve`: every documented operation, no 5xx answer,
and every answer as the document describes it.

Cases are generated from the server's own OpenAPI document (valid and invalid bodies)
and sent over real HTTP on loopback with an admin key. Each answer must have a documented
status, content type, headers and body, and a request the document calls invalid must
not be accepted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from keel.project import Project
from tests.helpers import free_port
from tests.serving.helpers import create_key, register_model, write_config
from tests.serving.test_process import wait_ready

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("fuzzed") / "project"
    root.mkdir()
    write_config(root, "rate_limit: 100000/second\ntimeout_ms: 2000")
    with Project.open(root) as project:
        register_model(project, root.parent)
        key = create_key(project, "predict", "feedback", "admin")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url, key
    finally:
        process.kill()
        process.wait(30)
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def test_every_generated_request_gets_a_documented_answer(served: tuple[str, str]) -> None:
    """Generated requests for every operation in /openapi.json never get a server error,
    and each answer is one the document describes."""
    url, key = served
    headers = {"Authorization": f"Bearer {key}"}
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/predict", "/v1/feedback"}
    failures: list[str] = []
    calls: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=url, headers=headers)
            calls.append(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS)
            except AssertionError as failure:  # schemathesis's failures are AssertionErrors
                failures.append(f"{case.method} {case.path} {response.status_code}: {failure}")

        check()
    assert failures == []
    assert len(calls) >= 20 * len(operations)  # the generator really exercised each one
