"""``keel audit PATH``: list what in a pilot will break in production.

The report is the product, so finding risks still exits 0; ``--fail-on high`` turns it
into a gate for CI (exit 1 when any finding is that severe or worse).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._common import JsonOpt, emit

if TYPE_CHECKING:
    from rich.console import Console

    from keel.audit import AuditReport

__all__ = ["audit", "register"]

_COLOURS = {"high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


class FailOn(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


def audit(
    path: Annotated[
        Path, typer.Argument(help="The pilot: a folder (or one file) of code and notebooks.")
    ] = Path("."),
    fail_on: Annotated[
        FailOn | None,
        typer.Option("--fail-on", help="Exit 1 if any finding is this severe or worse."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a pilot's production risks, each with where it is, a fix and the Keel feature.

    Reads Python files, notebooks and requirements files; unreadable ones are reported.

    Exits 0 even when it finds risks, unless one is at least as severe as --fail-on.
    """
    from keel.audit import Severity
    from keel.audit import audit as run_audit

    report = run_audit(path)
    emit(as_json, report.to_dict(), lambda con: _print_report(con, report))
    if fail_on is not None and report.has_at_least(Severity(fail_on.value)):
        raise typer.Exit(1)


def _print_report(con: Console, report: AuditReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not report.findings:
        con.print(f"No production risks found in {len(report.files)} file(s) under {report.root}.")
        return
    table = Table(title=f"Pilot audit of {report.root}", show_lines=True)
    table.add_column("severity", no_wrap=True)
    for column in ("where", "risk", "fix / Keel feature"):
        table.add_column(column, overflow="fold")
    for item in report.findings:
        colour = _COLOURS[item.severity.value]
        severity = f"[{colour}]{item.severity.value}[/{colour}]"
        fix = f"{escape(item.fix)}\n[dim]Keel: {escape(item.keel_feature)}[/dim]"
        table.add_row(severity, escape(item.location), escape(item.message), fix)
    con.print(table)
    con.print(_summary(report))


def _summary(report: AuditReport) -> str:
    from keel.audit import Severity

    counts = ", ".join(
        f"{report.count(level)} {level.value}"
        for level in reversed(Severity)
        if report.count(level)
    )
    return f"{len(report.findings)} risk(s) in {len(report.files)} file(s) read: {counts}."
