"""The report's values: severity order, locations, JSON shape."""

from __future__ import annotations

import pytest

from keel.audit import KINDS, AuditReport, Finding, Severity


def _finding(severity: Severity, file: str = "a.py", line: int | None = 1) -> Finding:
    return Finding("k", severity, file, line, "message", "fix", "feature")


@pytest.mark.parametrize(
    ("severity", "threshold", "expected"),
    [
        (Severity.HIGH, Severity.HIGH, True),
        (Severity.MEDIUM, Severity.HIGH, False),
        (Severity.MEDIUM, Severity.LOW, True),
        (Severity.INFO, Severity.LOW, False),
    ],
)
def test_severity_order(severity: Severity, threshold: Severity, expected: bool) -> None:
    """info < low < medium < high."""
    assert severity.at_least(threshold) is expected


@pytest.mark.parametrize(
    ("file", "cell", "line", "location"),
    [("a.py", None, 3, "a.py:3"), ("n.ipynb", 4, 2, "n.ipynb cell 4:2"), (".", None, None, ".")],
)
def test_locations(file: str, cell: int | None, line: int | None, location: str) -> None:
    """A location is file:line, with the notebook cell when there is one."""
    finding = Finding("k", Severity.LOW, file, line, "m", "f", "k", cell=cell)
    assert finding.location == location


def test_to_dict_counts_every_severity() -> None:
    """The JSON form carries counts for all severities, zeros included."""
    report = AuditReport("pilot", ("a.py",), (_finding(Severity.HIGH),))
    data = report.to_dict()
    assert data["counts"] == {"info": 0, "low": 0, "medium": 0, "high": 1}
    assert data["findings"][0]["severity"] == "high"
    assert data["findings"][0]["location"] == "a.py:1"


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_a_one_line_fix_and_a_feature(kind: str) -> None:
    """Each kind's fix and Keel feature are single short lines."""
    spec = KINDS[kind]
    for text in (spec.fix, spec.keel_feature):
        assert text and "\n" not in text and len(text) <= 90
