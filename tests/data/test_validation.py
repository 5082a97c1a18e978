"""Checks on small batches: each kind counts its violations and shows failing rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from keel.data.batch import Batch
from keel.data.model import Report
from keel.data.profiling import profile
from keel.data.validation import EXAMPLES, Context, validate
from keel.schema import SourceConfig

NOW = datetime(2026, 6, 1, 12, 0)
FRAME = pd.DataFrame(
    {
        "id": ["a1", "a2", "a3", "a3", "bad"],
        "age": [20, 30, None, 200, 40],
        "plan": ["basic", "basic", "gold", "premium", "basic"],
        "start": pd.to_datetime(
            ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
        ),
        "end": pd.to_datetime(
            ["2026-02-01", "2025-12-01", "2026-02-03", "2026-02-04", "2026-07-05"]
        ),
        "amount": [1.0, -2.0, -3.0, 4.0, 5.0],
        "kind": ["buy", "refund", "buy", "buy", "buy"],
    }
)


def _run(checks: dict[str, Any], frame: pd.DataFrame = FRAME, **source: Any) -> Report:
    checks = {"extra_columns": "ignore", **checks}
    config = SourceConfig.model_validate({"kind": "csv", "path": "x", **source, "checks": checks})
    with Batch.from_frame(frame) as batch:
        return validate(batch, "t", config, profile(batch), Context(now=NOW))


def _failed(report: Report) -> dict[str, int]:
    return {f.check: f.violations for f in report.findings if f.status == "fail"}


@pytest.mark.parametrize(
    ("column", "spec", "check", "violations"),
    [
        ("age", {"not_null": True}, "age.not_null", 1),
        ("age", {"range": [18, 110]}, "age.range", 1),
        ("age", {"max_null_rate": 0.1}, "age.max_null_rate", 1),
        ("plan", {"allowed": ["basic", "premium"]}, "plan.allowed", 1),
        ("id", {"regex": "a[0-9]"}, "id.regex", 1),
        ("id", {"unique": True}, "id.unique", 1),
        ("end", {"not_future": True}, "end.not_future", 1),
        ("end", {"freshness": "1d"}, None, 0),
        ("start", {"freshness": "30d"}, "start.freshness", 1),
        ("age", {"type": "string"}, "age.type", 1),
        ("nope", {"type": "int"}, "nope.missing", 1),
    ],
)
def test_column_check_counts_violations(
    column: str, spec: dict[str, Any], check: str | None, violations: int
) -> None:
    """Each column check fails with the number of offending rows, or passes."""
    failed = _failed(_run({"columns": {column: spec}}))
    assert failed == ({} if check is None else {check: violations})


def test_text_in_numeric_column_is_a_type_violation() -> None:
    """Words in a column declared int are counted, and range still reads the numbers."""
    frame = pd.DataFrame({"age": ["20", "forty", "300"]})
    failed = _failed(_run({"columns": {"age": {"type": "int", "range": [0, 120]}}}, frame))
    assert failed == {"age.type": 1, "age.range": 1}


@pytest.mark.parametrize(
    ("expr", "violations"),
    [("end >= start", 1), ("amount >= 0 or kind == 'refund'", 1), ("age < 100", 1)],
)
def test_rule_counts_rows_where_it_is_false(expr: str, violations: int) -> None:
    """A business rule fails on rows where it is false; NULL counts as true."""
    failed = _failed(_run({"rules": [{"name": "r", "expr": expr}]}))
    assert failed == {"rule:r": violations}


def test_rule_with_unknown_column_fails_with_reason() -> None:
    """A rule naming a column the batch lacks fails and says which column."""
    report = _run({"rules": [{"name": "r", "expr": "missing > 0"}]})
    assert "missing" in report.findings[0].message and report.findings[0].blocking


def test_key_implies_unique_and_not_null() -> None:
    """key: makes the column a primary key: duplicates are errors."""
    assert _failed(_run({}, key="id")) == {"id.unique": 1}


def test_ordering_within_entity() -> None:
    """ordered within an entity ignores interleaving between entities."""
    frame = pd.DataFrame({"who": ["a", "b", "a", "b"], "t": [1, 5, 2, 4]})
    assert _failed(_run({"ordered": {"by": "t", "within": "who"}}, frame)) == {
        "ordered:t within who": 1
    }


def test_warn_severity_does_not_block() -> None:
    """A failing warn check is reported but the batch passes."""
    report = _run({"columns": {"age": {"not_null": True, "severity": "warn"}}})
    assert report.passed and _failed(report) == {"age.not_null": 1}


def test_examples_are_capped() -> None:
    """At most EXAMPLES failing rows are kept per check."""
    frame = pd.DataFrame({"x": [None] * 100}, dtype="float64")
    report = _run({"columns": {"x": {"not_null": True}}}, frame)
    assert report.findings[0].violations == 100
    assert len(report.findings[0].examples) == EXAMPLES


def test_extra_columns_warn_by_default() -> None:
    """Columns the checks do not declare are a warning naming them."""
    report = _run({"columns": {"id": {"type": "string"}}, "extra_columns": "warn"})
    extra = next(f for f in report.findings if f.kind == "extra_columns")
    assert extra.severity == "warn" and "age" in extra.message


def test_unique_examples_show_every_copy() -> None:
    """The examples of a uniqueness failure are the rows sharing a repeated value."""
    report = _run({"columns": {"id": {"unique": True}}})
    finding = report.findings[0]
    assert [row["id"] for row in finding.examples] == ["a3", "a3"]


def test_awkward_column_names_are_quoted() -> None:
    """Columns with spaces and quotes work in every kind of check."""
    frame = pd.DataFrame({'event "time"': [1, 3, 2], "the id": ["a", "a", "b"]})
    checks = {
        "columns": {
            'event "time"': {"not_null": True, "range": [0, 2]},
            "the id": {"unique": True},
        },
        "ordered": {"by": 'event "time"', "within": "the id"},
        "rules": [{"name": "r", "expr": '"event ""time""" > 0'}],
    }
    assert _failed(_run(checks, frame)) == {'event "time".range': 1, "the id.unique": 1}


def test_rule_duckdb_cannot_run_is_a_finding_not_a_crash() -> None:
    """Text compared with a number fails the rule with DuckDB's reason; the run goes on."""
    report = _run({"rules": [{"name": "r", "expr": "age > 'old'"}]})
    assert "DuckDB cannot run it on age" in report.findings[0].message
    assert report.findings[0].blocking


@pytest.mark.parametrize("rowid_column", [False, True])
def test_a_batch_without_rows_counts_no_violations(rowid_column: bool) -> None:
    """Over no rows DuckDB's ``count_if`` is NULL: every row check counts 0 and passes
    (an empty partition of a partitioned source is validated this way), with or without a
    column named ``rowid``, which takes the other counting path."""
    frame = FRAME.head(0).assign(rowid=pd.Series(dtype="int64")) if rowid_column else FRAME.head(0)
    report = _run({"columns": {"plan": {"allowed": ["basic"]}, "age": {"range": [18, 110]}}}, frame)
    counted = {f.check: f.violations for f in report.findings if f.kind in ("allowed", "range")}
    assert counted == {"plan.allowed": 0, "age.range": 0}
