"""``keel audit`` as users run it: a table, JSON, exit codes, one line on a bad path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.cli.main import app

from ..helpers import keel
from .helpers import write_pilot

PILOT = {
    "serve.py": 'import os\nMODEL = "/home/alice/model.pkl"\n',
    "requirements.txt": "flask\n",
    "tests/test_serve.py": "def test_nothing():\n    pass\n",
}


def test_the_table_lists_each_risk_with_its_fix(tmp_path: Path) -> None:
    """The human output is a table with location, risk, fix and Keel feature, then a sum."""
    result = keel("audit", str(write_pilot(tmp_path, PILOT)), env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "serve.py:2" in result.stdout
    assert "hard-coded absolute path" in result.stdout
    assert "2 risk(s) in 3 file(s) read: 1 high, 1 medium." in result.stdout


def test_json_output_is_the_report(tmp_path: Path) -> None:
    """--json prints the report: files, counts and findings with every field."""
    result = keel("audit", str(write_pilot(tmp_path, PILOT)), "--json")
    report = json.loads(result.stdout)
    assert report["counts"]["high"] == 1
    assert {f["kind"] for f in report["findings"]} == {"absolute-path", "unpinned-dependency"}
    assert set(report["findings"][0]) >= {"kind", "severity", "file", "line", "fix", "keel_feature"}


@pytest.mark.parametrize(
    ("threshold", "code"), [(None, 0), ("high", 0), ("medium", 1), ("info", 1)]
)
def test_fail_on_turns_findings_into_an_exit_code(
    tmp_path: Path, threshold: str | None, code: int
) -> None:
    """Risks exit 0 (the report is the product) unless one is at least --fail-on."""
    files = {**PILOT, "serve.py": "import os\n"}  # leaves one medium finding: unpinned flask
    args = ["--fail-on", threshold] if threshold else []
    result = CliRunner().invoke(app, ["audit", str(write_pilot(tmp_path, files)), "--json", *args])
    assert result.exit_code == code, result.output


def test_a_missing_path_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A path that does not exist gets one sentence on stderr, no traceback."""
    result = keel("audit", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "nope does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_clean_pilot_says_so(tmp_path: Path) -> None:
    """With nothing to report, the command says how much it read."""
    files = {"a.py": "import os\n", "tests/test_a.py": "import os\n"}
    result = CliRunner().invoke(app, ["audit", str(write_pilot(tmp_path, files))])
    assert result.exit_code == 0
    assert "No production risks found in 2 file(s)" in result.output
