"""Reports for people: a terminal table, a self-contained HTML page per run, and the
warnings a published batch carries, as one line and as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.data.model import Finding, Report

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["print_report", "render_html", "warning_line", "warnings", "warnings_json"]

SHOWN_WARNINGS = 5
"""Warnings named on a run's line; the rest are counted."""

_MARK = {"pass": "[green]✓[/]", "skip": "[dim]-[/]"}
_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Keel data report: {{ report.source }}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.fail.error { background: #fde2e1; } .fail.warn { background: #fff4d6; }
.skip { color: #888; } .verdict { font-size: 1.3em; font-weight: bold; }
details { margin: 0.3em 0; } code { font-size: 12px; }
</style></head><body>
<h1>Data report: {{ report.source }}</h1>
<p class="verdict">{{ "Passed" if report.passed else "Refused: blocking checks failed" }}</p>
<p>{{ report.rows }} rows{% if report.reference %}, compared with version
<code>{{ report.reference[:12] }}</code>{% endif %}.</p>
<table><tr><th>check</th><th>kind</th><th>severity</th><th>status</th>
<th>violations</th><th>details</th></tr>
{% for f in findings %}<tr class="{{ f.status }} {{ f.severity }}">
<td><code>{{ f.check }}</code></td><td>{{ f.kind }}</td><td>{{ f.severity }}</td>
<td>{{ f.status }}</td><td>{{ f.violations }}</td><td>{{ f.message }}
{% if f.examples %}<details><summary>{{ f.examples | length }} example rows</summary>
<table><tr>{% for k in f.examples[0].keys() %}<th>{{ k }}</th>{% endfor %}</tr>
{% for row in f.examples %}<tr>{% for v in row.values() %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table></details>{% endif %}</td></tr>
{% endfor %}</table></body></html>
"""


def warnings(report: Report | None) -> list[Finding]:
    """The failed warn-level checks of a report: they do not block, but they are news."""
    if report is None:
        return []
    return [f for f in report.findings if f.status == "fail" and f.severity == "warn"]


def warnings_json(report: Report | None) -> list[dict[str, Any]]:
    """Each warning's check, severity, failing row count (None if not counted over rows)
    and message."""
    return [
        {"check": f.check, "severity": f.severity, "rows": f.rows, "message": f.message}
        for f in warnings(report)
    ]


def warning_line(report: Report | None) -> str:
    """`` with 2 warnings: a.not_null 9,430 rows; b.freshness`` or an empty string."""
    found = warnings(report)
    if not found:
        return ""
    named = [f.check + ("" if f.rows is None else f" {f.rows:,} rows") for f in found]
    more = len(named) - SHOWN_WARNINGS
    listed = "; ".join(named[:SHOWN_WARNINGS]) + (f"; and {more} more" if more > 0 else "")
    noun = "warning" if len(found) == 1 else "warnings"
    return f" with {len(found)} {noun}: {listed}"


def render_html(report: Report) -> str:
    """One self-contained HTML page (no external assets), failures first."""
    from jinja2 import Environment

    template = Environment(autoescape=True).from_string(_TEMPLATE)
    return template.render(report=report, findings=_ordered(report.findings))


def _ordered(findings: tuple[Finding, ...]) -> list[Finding]:
    rank = {("fail", "error"): 0, ("fail", "warn"): 1, ("skip", "error"): 2, ("skip", "warn"): 2}
    return sorted(findings, key=lambda f: rank.get((f.status, f.severity), 3))


def print_report(out: Console, report: Report, *, all_checks: bool = False) -> None:
    """A table of failing checks (every check with ``all_checks``) and the verdict."""
    from rich.markup import escape
    from rich.table import Table

    shown = [f for f in _ordered(report.findings) if all_checks or f.status != "pass"]
    verdict = "[green]passed[/]" if report.passed else "[red]refused[/]"
    passed = sum(1 for f in report.findings if f.status == "pass")
    out.print(
        f"{report.source}: {verdict} — {report.rows} rows, {passed}/{len(report.findings)} "
        "checks passed"
    )
    if not shown:
        return
    table = Table(show_header=True, header_style="bold")
    for title in ("", "check", "severity", "violations", "details"):
        table.add_column(title)
    for finding in shown:
        mark = _MARK.get(
            finding.status, "[red]✗[/]" if finding.severity == "error" else "[yellow]![/]"
        )
        table.add_row(
            mark,
            escape(finding.check),
            finding.severity,
            str(finding.violations),
            escape(_detail(finding)),
        )
    out.print(table)


def _detail(finding: Finding) -> str:
    if not finding.examples:
        return finding.message
    first = finding.examples[0]
    value = first.get(finding.column) if finding.column else None
    shown = f" (e.g. {finding.column}={value!r})" if finding.column in first else ""
    return finding.message + shown
