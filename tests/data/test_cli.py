"""The data commands: ingest, validate and data list|show|runs|report|infer."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from keel.cli.main import app
from keel.examples import generate
from tests.helpers import keel


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_ingest_json_then_list_and_show(churn_sqlite: Path) -> None:
    """keel ingest --json publishes; data list and data show find the version."""
    code, out = _run("ingest", "--json", "--project", str(churn_sqlite))
    assert code == 0, out
    assert [r["status"] for r in json.loads(out)["runs"]] == ["published", "published"]
    listed = json.loads(_run("data", "list", "--json", "-p", str(churn_sqlite))[1])
    assert {v["source"] for v in listed} == {"customers", "events"}
    shown = json.loads(
        _run("data", "show", listed[0]["id"][:8], "--json", "-p", str(churn_sqlite))[1]
    )
    assert shown["schema"]["customer_id"] == "VARCHAR"


def test_refused_batch_exits_1_and_names_checks(churn_sqlite: Path, tmp_path: Path) -> None:
    """A faulty batch makes keel ingest exit 1; the report command writes the HTML."""
    generate(churn_sqlite, rows=300, months=2, seed=7, faults=["duplicate_keys"])
    code, out = _run("ingest", "--source", "customers", "-p", str(churn_sqlite))
    assert code == 1 and "customer_id.unique" in out
    run_id = json.loads(_run("data", "runs", "--json", "-p", str(churn_sqlite))[1])[0]["id"]
    html = tmp_path / "report.html"
    _run("data", "report", run_id[:8], "--out", str(html), "-p", str(churn_sqlite))
    assert "customer_id.unique" in html.read_text()


def test_validate_file_exit_code(churn_sqlite: Path, tmp_path: Path) -> None:
    """keel validate exits 1 on a file with an error-level failure, 0 on a clean one."""
    clean = str(churn_sqlite / "data/customers.csv")
    code, out = _run("validate", "-s", "customers", "-d", clean, "-p", str(churn_sqlite), "--json")
    assert code == 0 and json.loads(out)["passed"]
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,age\nc_000001,500\n")
    code, out = _run("validate", "-s", "customers", "-d", str(bad), "-p", str(churn_sqlite))
    assert code == 1 and "age.range" in out


def test_infer_prints_a_checks_section(churn_sqlite: Path) -> None:
    """keel data infer proposes checks for every column of the sample."""
    sample = str(churn_sqlite / "data/customers.csv")
    code, out = _run("data", "infer", sample, "--key", "customer_id", "--json")
    assert code == 0
    assert json.loads(out)["checks"]["columns"]["customer_id"]["unique"] is True


def test_unknown_version_is_one_sentence(churn_sqlite: Path) -> None:
    """data show with an unknown id prints one error line and exits 1 (real process)."""
    result = keel("data", "show", "ffffffff", "-p", str(churn_sqlite))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "keel data list" in result.stderr


def test_diff_compares_two_versions(churn_sqlite: Path) -> None:
    """keel data diff names the row-count change between two customer versions."""
    _run("ingest", "-s", "customers", "-p", str(churn_sqlite))
    generate(churn_sqlite, rows=600, months=2, seed=7)
    _run("ingest", "-s", "customers", "-p", str(churn_sqlite))
    ids = [v["id"] for v in json.loads(_run("data", "list", "--json", "-p", str(churn_sqlite))[1])]
    code, out = _run("data", "diff", ids[0][:8], ids[1][:8], "--json", "-p", str(churn_sqlite))
    assert code == 0
    rows = next(f for f in json.loads(out)["findings"] if f["check"] == "stats:rows")
    assert rows["status"] == "fail" and "300 -> 600" in rows["message"]


def test_retire_then_list_marks_the_version(churn_sqlite: Path) -> None:
    """keel data retire records the reason; keel data list shows it beside the version."""
    _run("ingest", "-s", "customers", "-p", str(churn_sqlite))
    listed = json.loads(_run("data", "list", "--json", "-p", str(churn_sqlite))[1])
    assert listed[0]["retired_reason"] is None
    prefix = listed[0]["id"][:8]
    code, out = _run("data", "retire", prefix, "--reason", "bad export", "--json",
                     "-p", str(churn_sqlite))  # fmt: skip
    assert code == 0 and json.loads(out)["retired_reason"] == "bad export"
    code, out = _run("data", "list", "-p", str(churn_sqlite))
    assert code == 0 and "retired: bad export" in " ".join(out.split())  # lines may wrap
    listed = json.loads(_run("data", "list", "--json", "-p", str(churn_sqlite))[1])
    assert listed[0]["retired_reason"] == "bad export" and listed[0]["retired_at"] is not None
    code, out = _run("data", "show", prefix, "-p", str(churn_sqlite))
    assert code == 0 and "retired: bad export" in out


def test_retire_errors_are_one_sentence(churn_sqlite: Path) -> None:
    """An unknown version and a second retire each print one line and exit 1."""
    unknown = keel("data", "retire", "ffffffff", "--reason", "x", "-p", str(churn_sqlite))
    assert unknown.returncode == 1 and unknown.stderr.strip().count("\n") == 0
    assert "no data version starts with 'ffffffff'" in unknown.stderr
    _run("ingest", "-s", "customers", "-p", str(churn_sqlite))
    prefix = json.loads(_run("data", "list", "--json", "-p", str(churn_sqlite))[1])[0]["id"][:8]
    assert (
        keel("data", "retire", prefix, "--reason", "once", "-p", str(churn_sqlite)).returncode == 0
    )
    twice = keel("data", "retire", prefix, "--reason", "twice", "-p", str(churn_sqlite), "--json")
    assert twice.returncode == 1 and twice.stderr.strip().count("\n") == 0
    assert "already retired (once)" in twice.stderr and twice.stdout == ""
