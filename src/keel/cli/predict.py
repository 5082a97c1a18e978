"""``keel predict --batch``: score a whole table with the production (or a named) model.

Only typer and ``keel.cli._common`` load at import; the engine, DuckDB and the model load
inside the command, so ``keel --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._common import (
    EngineOpt,
    JsonOpt,
    ProjectOpt,
    cancellable,
    check_engine,
    emit,
    open_project,
    progress,
    typed_path,
)

if TYPE_CHECKING:
    from rich.console import Console

    from keel.serving.batch_job import BatchResult


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)


def predict(
    batch: Annotated[
        str,
        typer.Option(
            "--batch",
            help="The table to score: a declared source, or a Parquet/CSV file, folder or "
            "glob (relative to the working directory, or s3://).",
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            help="The Parquet file to write (relative to the working directory, or an s3:// URL).",
        ),
    ],
    version: Annotated[
        str | None, typer.Option("--version", help="A model version (default: production).")
    ] = None,
    engine: EngineOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a table offline with the same answers /v1/predict gives, logged for monitoring."""
    from keel.compute import open_engine
    from keel.serving.batch_job import predict_batch

    check_engine(engine)
    with (
        open_project(project) as opened,
        progress("connecting to the compute engine", quiet=as_json) as say,
    ):
        table = batch if batch in opened.config.sources else typed_path(batch)
        runner = open_engine(opened.config.compute, engine)
        try:
            say("scoring: 0 partitions done")
            with cancellable() as cancelled:
                try:
                    result = predict_batch(
                        opened,
                        table,
                        out if "://" in out else Path(out),
                        runner,
                        version=version,
                        progress=lambda done, total: say(
                            f"scoring: {done}/{total} partitions done"
                        ),
                    )
                except BaseException as error:
                    if not (isinstance(error, KeyboardInterrupt) or cancelled.is_set()):
                        raise
                    sys.stderr.write("cancelled: no output written, nothing logged\n")
                    raise typer.Exit(130) from None
        finally:
            runner.close()
    emit(as_json, result.to_dict(), lambda console: _human(console, result))


def _human(out: Console, result: BatchResult) -> None:
    out.print(
        f"[green]✓[/] scored {result.rows} rows ({result.answered} answered) with "
        f"{result.model_version} on {result.engine} in {result.partitions} partitions, "
        f"{result.seconds:g} s -> {result.out}"
    )
