"""The README's serving example, curl and Python, run against a real keel serve."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.client.conftest import Served

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT = "http://127.0.0.1:8000"


def example(kind: str) -> str:
    """The code block under ``<!-- client example: KIND -->`` in the README."""
    found = re.search(
        rf"<!-- client example: {kind} -->\n```\w+\n(.*?)```", README.read_text(), re.S
    )
    assert found is not None, f"the README has no {kind} client example"
    return found.group(1)


def test_the_curl_example_predicts(served: Served) -> None:
    """The README's curl line, pointed at the test server, gets a labelled prediction."""
    command = example("curl").replace(DEFAULT, served.url)
    env = {"KEEL_KEY": served.keys["admin"], "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, timeout=60)
    answer = json.loads(done.stdout)["predictions"][0]
    assert done.returncode == 0 and answer["label"] in (0, 1) and answer["fallback"] is None


def test_the_python_example_runs(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python block runs as written against the test server: one prediction,
    its feedback, 60 rows in batches, and the status."""
    monkeypatch.setenv("KEEL_KEY", served.keys["admin"])
    code = example("python").replace(DEFAULT, served.url)
    printed = io.StringIO()
    scope: dict[str, object] = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(README), "exec"), scope)
    answers = scope["answers"]
    assert isinstance(answers, list) and len(answers) == 60
    first, last = printed.getvalue().splitlines()
    assert first.split()[2] == scope["answer"].prediction_id  # type: ignore[attr-defined]
    assert last.split()[0] == answers[0].model_version
