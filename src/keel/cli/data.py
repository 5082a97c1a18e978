"""``keel ingest``, ``keel validate`` and ``keel data list|show|retire|runs|report|diff``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit, open_project, progress

if TYPE_CHECKING:
    from rich.console import Console

    from keel.data.model import DataVersion, Run

SourceOpt = Annotated[
    str | None, typer.Option("--source", "-s", help="Only this source (default: all).")
]
app = typer.Typer(help="Data versions, ingestion runs and their reports.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.command("ingest")(ingest)
    root.command("validate")(validate)
    root.add_typer(app, name="data")


def ingest(source: SourceOpt = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Read new data, validate it, and publish it as a data version or quarantine it.

    A published line names the warn-level checks that failed, with their failing rows;
    --json lists them per run under "warnings". Exits 1 if any batch was refused or
    could not be read.
    """
    from keel.data.ingestion import ingest as run_ingest

    with open_project(project) as opened, progress("ingesting", quiet=as_json) as update:
        runs = run_ingest(opened, source, progress=lambda name, step: update(f"{name}: {step}"))
    from keel.data.report import warnings_json

    data = {"runs": [{**r.to_dict(), "warnings": warnings_json(r.report)} for r in runs]}
    emit(as_json, data, lambda out: _print_runs(out, runs))
    if not all(run.ok for run in runs):
        raise typer.Exit(1)


def validate(
    source: Annotated[str, typer.Option("--source", "-s", help="Source whose checks to run.")],
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="CSV or Parquet file to check.")
    ] = None,
    latest: Annotated[
        bool,
        typer.Option("--latest", help="Check the newest published version instead of a file."),
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a file (or the newest published version) against a source's checks as
    keel.yaml has them now, without publishing anything; exit 1 on an error."""
    from keel.data.ingestion import Ingestion
    from keel.data.report import print_report
    from keel.errors import SourceError

    if (data is None) == (not latest):
        raise SourceError("pass either --data FILE or --latest (one of them)")
    if data is not None and not data.is_file():
        raise SourceError(f"{data} does not exist; pass the CSV or Parquet file to check")
    with open_project(project) as opened:
        if source not in opened.config.sources:
            raise SourceError(f"no source named '{source}' in keel.yaml")
        if data is not None:
            report = Ingestion(opened).check_file(source, data)
        else:
            _, report = Ingestion(opened).check_latest(source)
    emit(as_json, report.to_dict(), lambda out: print_report(out, report))
    if not report.passed:
        raise typer.Exit(1)


@app.command("list")
def list_versions(
    source: SourceOpt = None, project: ProjectOpt = None, as_json: JsonOpt = False
) -> None:
    """Published data versions, oldest first; retired ones are marked with their reason."""
    from keel.data.catalog import Catalog

    with open_project(project) as opened:
        versions = Catalog(opened.store).versions(source)
    emit(as_json, [_summary(v) for v in versions], lambda out: _print_versions(out, versions))


@app.command("show")
def show(
    version: Annotated[str, typer.Argument(help="Version id or a prefix of it.")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One data version: rows, schema, lineage and column profile."""
    from keel.data.catalog import Catalog

    with open_project(project) as opened:
        found = Catalog(opened.store).get(version)
    data = {**_summary(found), "schema": found.schema, "lineage": found.lineage}
    data["profile"] = found.profile.to_dict() if found.profile else None
    emit(as_json, data, lambda out: _print_version(out, found))


@app.command("retire")
def retire(
    version: Annotated[str, typer.Argument(help="Version id or a prefix of it.")],
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why the version is retired (recorded).")
    ],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retire a data version: kept for lineage, left out of training on live data."""
    from keel.data.catalog import Catalog

    with open_project(project) as opened:
        catalog = Catalog(opened.store)
        retired = catalog.retire(catalog.get(version).id, reason)
    emit(as_json, _summary(retired), lambda out: _print_retired(out, retired))


@app.command("runs")
def runs(source: SourceOpt = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """The latest ingestion runs, newest first, with their outcome."""
    from keel.data.catalog import Catalog

    with open_project(project) as opened:
        found = Catalog(opened.store).runs(source)
    data = [{k: v for k, v in r.to_dict().items() if k != "report"} for r in found]
    emit(as_json, data, lambda out: _print_runs(out, found, reports=False))


@app.command("report")
def report(
    run: Annotated[str, typer.Argument(help="Run id or a prefix of it.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the HTML here.")] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A run's validation report in the terminal, and as HTML with --out."""
    from keel.data.catalog import Catalog
    from keel.data.report import print_report
    from keel.errors import DataVersionNotFound

    with open_project(project) as opened:
        found = Catalog(opened.store).run(run)
        shown = found.report
        if shown is None or found.report_artifact is None:
            raise DataVersionNotFound(f"run {run} has no report ({found.message})")
        if out is not None:
            out.write_bytes(opened.artifacts.get_bytes(found.report_artifact))
    emit(as_json, shown.to_dict(), lambda con: print_report(con, shown, all_checks=True))


@app.command("diff")
def diff(
    first: Annotated[str, typer.Argument(help="The reference version (id or prefix).")],
    second: Annotated[str, typer.Argument(help="The version to compare with it.")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare two versions' profiles: schema, rows, null rates, distributions."""
    from keel.data.catalog import Catalog
    from keel.data.model import Report
    from keel.data.report import print_report
    from keel.data.stats import compare
    from keel.schema import StatisticsCheck

    with open_project(project) as opened:
        catalog = Catalog(opened.store)
        before, after = catalog.get(first), catalog.get(second)
    assert before.profile is not None and after.profile is not None
    spec = StatisticsCheck(max_row_change=0.2, max_cardinality_change=0.2)
    findings = tuple(compare(after.profile, before.profile, spec))
    result = Report(after.source, after.rows, findings, before.id)
    emit(as_json, result.to_dict(), lambda out: print_report(out, result))


@app.command("infer")
def infer(
    data: Annotated[Path, typer.Argument(help="A CSV or Parquet sample of the source.")],
    key: Annotated[
        list[str] | None,
        typer.Option(help="The key column: never null, unique (repeat for a composite key)."),
    ] = None,
    time: Annotated[str | None, typer.Option(help="The time column: must hold timestamps.")] = None,
    new_categories: Annotated[
        str, typer.Option(help="A text value not in the sample: warn, error or ignore.")
    ] = "warn",
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose a checks: section from a sample, to paste under a source and edit.

    Needs no project: a relative sample path is read from the working directory, as every
    path typed on the command line is (--project, accepted for symmetry, changes nothing).
    """
    from keel.cli._common import console
    from keel.data.infer import read_sample

    found = read_sample(data, key=key, time=time, new_categories=new_categories)
    for note in () if as_json else found.notes:
        console(stderr=True).print(f"note: {note}", markup=False)
    data_out = {"checks": found.checks, "notes": list(found.notes)}
    emit(as_json, data_out, lambda out: _print_yaml(out, found.checks))


def _print_yaml(out: Console, checks: dict[str, Any]) -> None:
    import yaml

    out.print("# proposed from a sample: review every line before relying on it", markup=False)
    out.print(yaml.safe_dump({"checks": checks}, sort_keys=False), markup=False, end="")


def _summary(version: DataVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "source": version.source,
        "rows": version.rows,
        "created_at": version.created_at,
        "time_min": version.time_min,
        "time_max": version.time_max,
        "artifact": version.artifact,
        "retired_at": version.retired_at,
        "retired_reason": version.retired_reason,
    }


def _print_runs(out: Console, found: list[Run], *, reports: bool = True) -> None:
    from rich.markup import escape

    from keel.data.report import print_report

    marks = {"published": "[green]✓[/]", "already_ingested": "[green]=[/]", "empty": "[dim]-[/]"}
    for run in found:
        out.print(
            f"{marks.get(run.status, '[red]✗[/]')} {run.source}: {escape(run.message)}  "
            f"[dim](run {run.id[:8]})[/]"
        )
        if reports and run.report is not None and run.status == "quarantined":
            print_report(out, run.report)
            out.print(f"  HTML report: .keel/reports/{run.source}-{run.id[:8]}.html")


def _print_versions(out: Console, versions: list[DataVersion]) -> None:
    from datetime import datetime

    from rich.markup import escape

    if not versions:
        out.print("no data versions yet; run `keel ingest`")
    for v in versions:
        when = datetime.fromtimestamp(v.created_at).strftime("%Y-%m-%d %H:%M")
        retired = "" if v.live else f"  [yellow]retired[/]: {escape(v.retired_reason or '')}"
        out.print(f"{v.short}  {v.source:<16} {v.rows:>10} rows  {when}{retired}")


def _print_retired(out: Console, version: DataVersion) -> None:
    from rich.markup import escape

    reason = escape(version.retired_reason or "")
    out.print(f"retired {version.short} ({version.source}, {version.rows} rows): {reason}")


def _print_version(out: Console, version: DataVersion) -> None:
    from rich.markup import escape
    from rich.table import Table

    out.print(f"version {version.id}\n  source {version.source}, {version.rows} rows")
    if not version.live:
        out.print(f"  [yellow]retired[/]: {escape(version.retired_reason or '')}")
    if version.time_min:
        out.print(f"  time {version.time_min} .. {version.time_max}")
    for item in version.lineage.get("files", ()):
        out.print(f"  file {item['path']} ({item['sha256'][:12]})")
    table = Table(show_header=True, header_style="bold")
    for title in ("column", "type", "nulls", "distinct", "min", "max", "top"):
        table.add_column(title)
    for c in version.profile.columns if version.profile else ():
        top = ", ".join(value for value, _ in c.top[:3]) + (" …" if len(c.top) > 3 else "")
        distinct = _shown(c.distinct if c.distinct >= 0 else None)
        table.add_row(
            c.name, c.type, f"{c.null_rate:.2%}", distinct, _shown(c.min), _shown(c.max), top
        )
    out.print(table)


def _shown(value: object) -> str:
    return "-" if value is None else str(value)
