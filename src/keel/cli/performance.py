"""``keel feedback FILE`` and ``keel performance``: ground truth in, metrics per window out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``keel feedback`` and ``keel performance``."""
    app.command("feedback")(feedback)
    app.command("performance")(performance)


def feedback(
    file: Annotated[Path, typer.Argument(help="CSV with prediction_id, label[, value].")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load ground truth for logged predictions; loading the same file again changes nothing."""
    import time

    from keel.monitoring.cycle import open_log
    from keel.monitoring.feedback import read_feedback_file, store_feedback
    from keel.project import Project

    frame = read_feedback_file(file)
    with Project.open(project) as opened:
        log = open_log(opened)
        try:
            log.flush()
            known = set(log.read()["prediction_id"]) if log.segments() else set()
        finally:
            log.close(flush=False)
        stored = store_feedback(opened.store, frame, time.time())
    data = {
        "rows": len(frame),
        "stored": stored,
        "duplicates": int(frame["prediction_id"].duplicated().sum()),
        "unknown_ids": int((~frame["prediction_id"].isin(known)).sum()),
    }
    emit(as_json, data, lambda out: out.print(
        f"stored {data['stored']} labels ({data['duplicates']} duplicate rows, "
        f"{data['unknown_ids']} ids not in the prediction log)"
    ))  # fmt: skip


def performance(
    score: Annotated[str, typer.Option("--score", help="Logged output column.")] = "output",
    kind: Annotated[str, typer.Option("--kind", help="classification or regression.")] = (
        "classification"
    ),
    window: Annotated[str | None, typer.Option("--window", "-w", help="e.g. 1d.")] = None,
    last: Annotated[int | None, typer.Option("--last", "-n", min=1)] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Metrics of a window of logged predictions, realised from labels or estimated."""
    from datetime import UTC, datetime, timedelta

    from keel.errors import MonitoringError
    from keel.monitoring.cycle import open_log
    from keel.monitoring.feedback import window_report
    from keel.monitoring.wiring import WindowChoice
    from keel.project import Project
    from keel.schema import parse_duration

    if kind not in ("classification", "regression"):
        raise MonitoringError(f"unknown --kind {kind!r}; use classification or regression")
    try:
        duration = parse_duration(window) if window else None
    except ValueError as error:
        raise MonitoringError(f"--window {error}") from None
    with Project.open(project) as opened:
        config = opened.config.monitoring
        spec = config.performance if config else None
        log = open_log(opened)
        try:
            result, _ = window_report(
                log,
                opened.store,
                WindowChoice(duration=duration, last=last),
                score=score,
                kind=kind,  # type: ignore[arg-type]
                label_delay=spec.label_delay if spec else timedelta(days=30),
                now=datetime.now(UTC),
                business=[(b.name, b.outcome, b.agg) for b in spec.business] if spec else [],
            )
        finally:
            log.close(flush=False)
    data = _as_dict(result)
    emit(as_json, data, lambda out: _print(out, data))


def _as_dict(result: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}


def _print(out: Console, data: dict[str, Any]) -> None:
    state = "estimated" if data["estimated"] else "realised"
    maturity = "mature" if data["mature"] else "labels not yet mature"
    out.print(f"{data['rows']} predictions, {data['labelled']} labelled ({maturity}); {state}:")
    for name, value in {**data["metrics"], **data["business"]}.items():
        out.print(f"  {name}: {value:.4g}")
    if data["assumptions"]:
        out.print(f"  [yellow]{data['assumptions']}[/]")
