"""``keel example generate``: the deterministic customer-churn data set."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._common import JsonOpt, emit

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(help="Example data for trying Keel and for tests.", no_args_is_help=True)


def _kinds(value: str) -> list[str]:
    return [kind.strip() for kind in value.split(",") if kind.strip()]


@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the data into.")],
    rows: Annotated[int, typer.Option(help="Number of customers.")] = 2000,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same bytes.")
    ] = 42,
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First day of the period.")
    ] = datetime(2026, 1, 1),
    months: Annotated[int, typer.Option(help="Length of the period in months.")] = 6,
    drift: Annotated[
        str, typer.Option(help="Comma-separated drift kinds for the second half of the period.")
    ] = "",
    faults: Annotated[
        str, typer.Option(help="Comma-separated data-quality faults to inject.")
    ] = "",
    as_json: JsonOpt = False,
) -> None:
    """Write customers, monthly event files, delayed churn labels and hard examples.

    Drift kinds: numeric_shift, new_category, category_share, concept.
    Fault kinds: nulls, out_of_range, duplicate_keys, orphan_keys, out_of_order,
    type_change, dropped_column.
    """
    result = _generate(out, rows, seed, start.date(), months, drift, faults, quiet=as_json)
    emit(as_json, result, lambda con: _print_summary(con, result))


def _generate(
    out: Path,
    rows: int,
    seed: int,
    start: date,
    months: int,
    drift: str,
    faults: str,
    *,
    quiet: bool,
) -> dict[str, object]:
    from keel.cli._common import progress
    from keel.examples import generate as run_generator

    with progress(f"generating {rows} customers", quiet=quiet):
        generated = run_generator(
            out,
            rows=rows,
            seed=seed,
            start=start,
            months=months,
            drift=_kinds(drift),
            faults=_kinds(faults),
        )
    summary: dict[str, object] = generated.to_dict()
    return summary


def _print_summary(out: Console, result: dict[str, object]) -> None:
    out.print(
        f"[green]✓[/] wrote {result['customers']} customers, {result['events']} events and "
        f"{result['labels']} labels to {result['out']}"
    )
    for key in ("drift", "faults"):
        kinds = result.get(key)
        if isinstance(kinds, list) and kinds:
            out.print(f"  {key}: {', '.join(kinds)}")
