"""``keel init`` and ``keel quickstart``: start a project."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._common import JsonOpt, emit, progress

if TYPE_CHECKING:
    from rich.console import Console

Rows = Annotated[int, typer.Option(help="Number of example customers to generate.")]
Seed = Annotated[int, typer.Option(help="Seed for the generated data.")]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("quickstart")(quickstart)


def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new project.")] = Path("."),
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Your table: a CSV or Parquet file, or a SQL URL with --query. "
            "Without it, the example churn project is made.",
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="The column to predict.")] = None,
    time: Annotated[str | None, typer.Option(help="The time column (split by time).")] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(help="The key column: unique, never null (repeat for a composite key)."),
    ] = None,
    positive: Annotated[
        str | None, typer.Option(help="The target value that counts as positive.")
    ] = None,
    query: Annotated[str | None, typer.Option(help="The SQL query, with a SQL URL.")] = None,
    new_categories: Annotated[
        str, typer.Option(help="A text value the table did not have: warn, error or ignore.")
    ] = "warn",
    rows: Rows = 2000,
    seed: Seed = 42,
    as_json: JsonOpt = False,
) -> None:
    """Create a project: around your table with --from, or the working example without it."""
    if from_ is not None:
        options = {"time": time, "keys": key or [], "positive": positive, "query": query}
        _init_from(folder, from_, target, {**options, "new_categories": new_categories}, as_json)
        return
    if target is not None:
        from keel.errors import ProjectError

        raise ProjectError("--target goes with --from TABLE; pass the table to build around")
    from keel.scaffold import init_project

    with progress(f"creating a project in {folder}", quiet=as_json):
        result = init_project(folder, rows=rows, seed=seed)
    emit(as_json, result.to_dict(), lambda out: _created(out, result.to_dict()))


def _init_from(
    folder: Path, table: str, target: str | None, options: dict[str, Any], as_json: bool
) -> None:
    from keel.errors import ProjectError
    from keel.scaffold import init_from_table

    if target is None:
        raise ProjectError("--from needs --target COLUMN, the column the model should predict")
    with progress(f"reading {table}", quiet=as_json):
        made = init_from_table(folder, table, target=target, **options)
    emit(as_json, made.to_dict(), lambda out: _made(out, made.to_dict()))


def quickstart(
    folder: Annotated[Path, typer.Argument(help="Folder for the new project.")] = Path(
        "keel-quickstart"
    ),
    rows: Rows = 2000,
    seed: Seed = 42,
    as_json: JsonOpt = False,
) -> None:
    """Create the example project and run the story, from data to a model rolled out safely."""
    import time

    from keel.cli._common import console
    from keel.quickstart import run_story

    out = console()
    steps: list[dict[str, object]] = []
    started = time.monotonic()
    with (
        _terminated_unwinds(),
        progress("creating the example project", quiet=as_json) as update,
    ):
        for step in run_story(folder, rows=rows, seed=seed, say=update):
            steps.append(step.to_dict())
            if not as_json:
                out.print(f"[green]✓[/] [bold]{step.name}[/]: {step.summary}", highlight=False)
    root = str(steps[0]["root"])
    seconds = round(time.monotonic() - started, 1)
    data = {"root": root, "seconds": seconds, "steps": steps}
    emit(as_json, data, lambda con: _next_steps(con, root, seconds))


@contextmanager
def _terminated_unwinds() -> Iterator[None]:
    """SIGTERM ends the story as Ctrl-C does, by an exception in the main thread, so the
    model server the story started is stopped on the way out instead of left running;
    the command exits 143 with one line."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        sys.stderr.write("stopped: SIGTERM; the story's model server is stopped too\n")
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _created(out: Console, result: dict[str, object]) -> None:
    out.print(
        f"[green]✓[/] created a Keel project in {result['root']} "
        f"({result['customers']} customers, {result['events']} events, {result['labels']} labels)"
    )
    out.print("  next: cd into it and run `keel config check`")


def _made(out: Console, made: dict[str, Any]) -> None:
    out.print(
        f"[green]✓[/] created a Keel project in {made['root']} around {made['rows']} rows "
        f"(source '{made['source']}', {made['task']})"
    )
    for note in made["notes"]:
        out.print(f"  note: {note}", markup=False)
    out.print(f"  next: cd {made['root']} && keel ingest && keel train && keel deploy latest")


def _next_steps(out: Console, root: str, seconds: float) -> None:
    out.print(f"\nThe story took {seconds:.0f} s. The project is in {root}; cd into it and try")
    out.print("`keel status`, `keel deployments`, `keel alerts list`, or `keel up` (server and")
    out.print("worker; dashboard at http://127.0.0.1:8000/ui, signing in with a key from")
    out.print("`keel keys create --name me --scope admin`).")
