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
        loaded = store_feedback(opened.store, frame, time.time())
    data = {
        "rows": len(frame),
        "new": loaded.new,
        "updated": loaded.updated,
        "unchanged": loaded.unchanged,
        "duplicates": int(frame["prediction_id"].duplicated().sum()),
        "unknown_ids": int((~frame["prediction_id"].isin(known)).sum()),
    }
    emit(as_json, data, lambda out: out.print(
        f"{data['rows']} rows: {data['new']} new, {data['updated']} updated, "
        f"{data['unchanged']} unchanged labels ({data['duplicates']} duplicate rows, "
        f"{data['unknown_ids']} ids not in the prediction log)"
    ))  # fmt: skip


def performance(
    score: Annotated[
        str | None,
        typer.Option("--score", help="Logged probability column (default: score)."),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="classification or regression (default: the model's)."),
    ] = None,
    window: Annotated[str | None, typer.Option("--window", "-w", help="e.g. 1d.")] = None,
    last: Annotated[int | None, typer.Option("--last", "-n", min=1)] = None,
    label_delay: Annotated[
        str | None,
        typer.Option("--label-delay", help="e.g. 2d (default: the median delay observed)."),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Metrics of a window of logged predictions: realised from labels, or estimated."""
    from datetime import UTC, datetime

    from keel.errors import MonitoringError
    from keel.monitoring.cycle import open_log
    from keel.monitoring.feedback import window_report
    from keel.monitoring.wiring import WindowChoice
    from keel.project import Project

    if kind not in (None, "classification", "regression"):
        raise MonitoringError(f"unknown --kind {kind!r}; use classification or regression")
    duration, delay = _duration("--window", window), _duration("--label-delay", label_delay)
    with Project.open(project) as opened:
        spec = opened.config.monitoring.performance if opened.config.monitoring else None
        log = open_log(opened)
        try:
            result, _ = window_report(
                log,
                opened.store,
                WindowChoice(duration=duration, last=last),
                score=score or (spec.score if spec else None),
                kind=kind or (spec.kind if spec else "classification"),  # type: ignore[arg-type]
                label_delay=delay or (spec.label_delay if spec else None),
                now=datetime.now(UTC),
                business=[(b.name, b.outcome, b.agg) for b in spec.business] if spec else [],
                project=opened,
            )
        finally:
            log.close(flush=False)
    data = _as_dict(result)
    if delay is not None:
        data["label_delay_source"] = "--label-delay"
    emit(as_json, data, lambda out: _print(out, data))


def _duration(option: str, text: str | None) -> Any:
    from keel.errors import MonitoringError
    from keel.schema import parse_duration

    try:
        return parse_duration(text) if text else None
    except ValueError as error:
        raise MonitoringError(f"{option} {error}") from None


def _as_dict(result: Any) -> dict[str, Any]:
    import dataclasses

    data = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    data["intervals"] = {k: list(v) for k, v in result.intervals.items()}
    data["calibration"] = [
        {"mean_probability": p, "observed_rate": o, "rows": n} for p, o, n in result.calibration
    ]
    return data


def _print(out: Console, data: dict[str, Any]) -> None:
    state = "ESTIMATED (no labels used)" if data["estimated"] else "realised from labels"
    if not data["estimated"] and not data["metrics"]:
        state = "no metrics"
    maturity = "mature" if data["mature"] else "labels not yet mature"
    delay = _readable(data["label_delay_s"])
    out.print(
        f"{data['rows']} predictions, {data['labelled']} labelled ({maturity}; label delay "
        f"{delay}, {data['label_delay_source']}); {state}:"
    )
    if data["positive"] is not None:
        out.print(f"  {data['kind']}, positive class {data['positive']!r}")
    for name, value in data["metrics"].items():
        low_high = data["intervals"].get(name)
        ci = f"  [95% CI {low_high[0]:.4f} to {low_high[1]:.4f}]" if low_high else ""
        out.print(f"  {name}: {value:.4f}{ci}")
    if data["calibration"]:
        bins = ", ".join(
            f"{b['mean_probability']:.2f}->{b['observed_rate']:.2f} ({b['rows']})"
            for b in data["calibration"]
        )
        out.print(f"  calibration (mean probability->observed rate (rows)): {bins}")
    for name, value in data["business"].items():
        out.print(f"  {name}: {value:.6g}")
    if data["unmatched"]:
        out.print(
            f"  [yellow]{data['unmatched']} labels match none of the model's classes "
            f"{list(data['classes'])} (e.g. {', '.join(data['unmatched_examples'])}): "
            "left out; send labels as one of those classes[/]"
        )
    for note in data["notes"]:
        out.print(f"  [yellow]{note}[/]")
    if data["assumptions"]:
        out.print(f"  [yellow]{data['assumptions']}[/]")


def _readable(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"
