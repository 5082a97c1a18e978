"""Reports for people: the HTML page and the terminal table."""

from __future__ import annotations

from rich.console import Console

from keel.data.model import Finding, Report
from keel.data.report import print_report, render_html

BAD = Finding(
    "name.regex",
    "regex",
    "error",
    "fail",
    "1 row: name does not match '[a-z]+'",
    column="name",
    violations=1,
    examples=({"name": "<script>alert(1)</script>"},),
)
OK = Finding("age.range", "range", "error", "pass", "ok", column="age")
REPORT = Report("people", 10, (OK, BAD))


def test_html_is_self_contained_and_escaped() -> None:
    """The page has no external assets and shows data values escaped."""
    page = render_html(REPORT)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "http" not in page and "Refused" in page


def test_html_lists_failures_first() -> None:
    """A failing check comes before a passing one."""
    page = render_html(REPORT)
    assert page.index("name.regex") < page.index("age.range")


def test_terminal_table_shows_failures_and_verdict() -> None:
    """The terminal report names the failing check and its first example value."""
    console = Console(record=True, width=200)
    print_report(console, REPORT)
    text = console.export_text()
    assert "people: refused" in text and "name.regex" in text and "<script>" in text
    assert "age.range" not in text
