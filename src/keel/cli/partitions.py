"""``keel data partitions``: version and check a source of many Parquet files, partition
by partition, on the project's compute engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._common import (
    EngineOpt,
    JsonOpt,
    ProjectOpt,
    check_engine,
    emit,
    open_project,
    progress,
)

if TYPE_CHECKING:
    from rich.console import Console

    from keel.data.partitioned import PartitionedReport


def register(data_app: typer.Typer) -> None:
    data_app.command("partitions")(partitions)


def partitions(
    source: Annotated[str, typer.Option("--source", "-s", help="A source of Parquet files.")],
    engine: EngineOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Version a partitioned source as a manifest and run its checks on every partition;
    exit 1 on an error."""
    from datetime import datetime

    from keel.compute import open_engine
    from keel.data.catalog import Catalog
    from keel.data.manifests import reference_values
    from keel.data.partitioned import check_partitioned, store_manifest
    from keel.data.partitions import resolve_table
    from keel.errors import SourceError

    check_engine(engine)
    with open_project(project) as opened:
        config = opened.config.sources.get(source)
        if config is None:
            raise SourceError(f"no source named '{source}' in keel.yaml")
        table = resolve_table(opened.root, source, opened.config.sources, opened.artifacts.storage)
        lookups = reference_values(opened, Catalog(opened.store), config)
        with progress(f"checking {len(table.files)} partitions", quiet=as_json):
            runner = open_engine(opened.config.compute, engine)
            try:
                report = check_partitioned(
                    runner, source, config, table, datetime.now(), lookups=lookups
                )
            finally:
                runner.close()
        store_manifest(opened.artifacts, report.manifest)
    emit(as_json, report.to_dict(), lambda out: _human(out, source, report))
    if not report.passed:
        raise typer.Exit(1)


def _human(out: Console, source: str, report: PartitionedReport) -> None:
    verdict = "[green]passed[/]" if report.passed else "[red]refused[/]"
    found = report.manifest
    out.print(
        f"{source}: {verdict} — version {found['sha256'][:12]}, {found['rows']} rows in "
        f"{len(found['partitions'])} partitions"
    )
    for part in report.partitions:
        for finding in part.findings:
            out.print(f"  {finding.severity}: {finding.message}", soft_wrap=True)
    for finding in report.merged:
        if finding.status == "fail":
            out.print(f"  {finding.severity}: {finding.message}", soft_wrap=True)
