"""``keel drift``: compare logged predictions with a reference, column by column."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._common import (
    EngineOpt,
    JsonOpt,
    ProjectOpt,
    cancellable,
    check_engine,
    emit,
    progress,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from keel.monitoring.log import PredictionLog
    from keel.monitoring.reference import Reference
    from keel.monitoring.results import DriftReport
    from keel.schema import ComputeConfig, MonitoringConfig

__all__ = ["register"]

LogOpt = Annotated[
    Path | None,
    typer.Option(
        "--log", help="Prediction log folder (default: the project's log).", dir_okay=True
    ),
]
ReferenceOpt = Annotated[
    Path | None,
    typer.Option(
        "--reference", "-r", help="Reference data (.csv, .parquet) or saved statistics (.json)."
    ),
]
FirstOpt = Annotated[
    int | None,
    typer.Option(
        "--reference-first", min=1, help="Use the first N logged predictions as reference."
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="Use a model version's reference statistics (e.g. production)."),
]
WindowOpt = Annotated[
    str | None, typer.Option("--window", "-w", help="Only predictions of the last 1h, 30m, 2d...")
]
LastOpt = Annotated[int | None, typer.Option("--last", "-n", min=1, help="Only the last N.")]
VersionOpt = Annotated[
    str | None,
    typer.Option(
        "--model-version",
        help="Judge this model version's predictions (default: the reference model's own "
        "if it served in the window, else the one that served most; versions are never "
        "mixed).",
    ),
]
CorrectionOpt = Annotated[
    str | None, typer.Option("--correction", help="holm, bonferroni, fdr or none.")
]


def register(app: typer.Typer) -> None:
    """Add the monitoring commands (and ``keel alerts``) to the ``keel`` app."""
    from keel.cli import alerts, performance

    app.command("drift")(drift)
    app.command("monitor")(monitor)
    performance.register(app)
    app.add_typer(alerts.app, name="alerts", no_args_is_help=True)


def drift(
    reference: ReferenceOpt = None,
    reference_first: FirstOpt = None,
    window: WindowOpt = None,
    last: LastOpt = None,
    model: ModelOpt = None,
    model_version: VersionOpt = None,
    log: LogOpt = None,
    correction: CorrectionOpt = None,
    engine: EngineOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Test logged predictions for drift against a reference, one verdict per column.

    One model version at a time: two versions' predictions are never mixed in a window.
    Works on any log folder (--log DIR), no keel.yaml needed; rolls spools left behind.
    With compute.engine dask (or --engine dask) a window of more than
    compute.partition_rows rows is read one log segment per task on the cluster, showing
    the segments done; Ctrl-C cancels the cluster's tasks and exits 130.
    """
    import dataclasses
    import functools

    from keel.monitoring.wiring import (
        WindowChoice,
        drift_settings,
        load_reference,
        reference_options,
        run_drift,
    )

    check_engine(engine)
    config = _monitoring_config(project, required=log is None)
    compute = _compute_config(project, engine)
    own_reference = reference is None and reference_first is None and model is None
    opened = _open_log(log, project, compute, strict=own_reference)
    settings = drift_settings(config.drift if config else None)
    settings = _with_correction(settings, correction)
    choice = WindowChoice(
        duration=_duration(window) if window else None,
        last=last,
        skip_first=reference_first if (reference_first and not window and not last) else 0,
        model_version=model_version,
    )
    try:
        opened.flush()  # roll spool files a dead process left behind
        options = reference_options(config.drift if config else None)
        if reference is not None or reference_first is not None:
            ref = load_reference(reference, opened, reference_first, **options)
        else:
            ref, prefer = _project_reference(model, config, project, opened, options, compute)
            choice = dataclasses.replace(choice, prefer_version=prefer)
        judge = functools.partial(run_drift, opened, ref, choice, settings, compute=compute)
        report = _judged(judge, quiet=as_json)
    finally:
        opened.close(flush=False)
    emit(as_json, report.to_dict(), lambda out: _print_report(out, report))


def _judged(judge: Callable[..., DriftReport], *, quiet: bool) -> DriftReport:
    """``judge(progress=...)`` under a status line that counts the segments done on a
    cluster; Ctrl-C cancels the cluster's tasks and exits 130 with one line (no report)."""
    with progress("checking drift", quiet=quiet) as say, cancellable() as cancelled:
        try:
            return judge(progress=lambda done, total: say(f"drift: {done}/{total} segments done"))
        except BaseException as error:
            if not (isinstance(error, KeyboardInterrupt) or cancelled.is_set()):
                raise
            sys.stderr.write("cancelled: the cluster's tasks were cancelled, no report\n")
            raise typer.Exit(130) from None


def _monitoring_config(project: Path | None, *, required: bool) -> MonitoringConfig | None:
    from keel.errors import ProjectError
    from keel.project import Project

    try:
        with Project.open(project) as opened:
            return opened.config.monitoring
    except ProjectError:
        if required:
            raise
        return None


def _compute_config(project: Path | None, engine: str | None) -> ComputeConfig | None:
    """``compute`` of the project (if there is one), with ``--engine`` over its engine."""
    from keel.errors import ProjectError
    from keel.project import Project
    from keel.schema import ComputeConfig

    try:
        with Project.open(project) as opened:
            compute = opened.config.compute
    except ProjectError:
        compute = None
    if engine is None:
        return compute
    return (compute or ComputeConfig()).model_copy(update={"engine": engine})


def _open_log(
    folder: Path | None,
    project: Path | None,
    compute: ComputeConfig | None = None,
    *,
    strict: bool = False,
) -> PredictionLog:
    """The log in ``folder``, else the project's, its segments sketched on a reference
    built on ``compute`` (``--engine`` over ``compute.engine``); with ``strict`` (the
    command judges on that reference too) a reference that cannot be built fails here,
    with its one sentence, instead of a warning now and the same error later."""
    from keel.errors import MonitoringError
    from keel.monitoring.cycle import project_sketcher
    from keel.monitoring.log import PredictionLog
    from keel.project import Project

    if folder is not None:
        if not folder.is_dir():
            raise MonitoringError(f"{folder} is not a prediction log folder; pass --log DIR")
        return PredictionLog(folder)
    opened = Project.open(project)
    try:
        sketcher = project_sketcher(opened, compute, strict=strict)
    except BaseException:
        opened.close()
        raise
    return PredictionLog.for_project(opened, sketcher=sketcher)


def _project_reference(
    model: str | None,
    config: MonitoringConfig | None,
    project: Path | None,
    log: PredictionLog,
    options: dict[str, Any],
    compute: ComputeConfig | None,
) -> tuple[Reference, str | None]:
    """--model, else monitoring.reference (a file or model:REF); a project is needed.
    Also the logged name of the reference's model version, whose rows are preferred."""
    from keel.errors import MonitoringError, ProjectError
    from keel.monitoring.cycle import project_reference, reference_model
    from keel.project import Project

    text = f"model:{model}" if model else (config.reference if config else None)
    if text is None:
        raise MonitoringError(
            "no reference to compare with: pass --reference FILE, --reference-first N, "
            "--model VERSION, or set monitoring.reference in keel.yaml"
        )
    try:
        with Project.open(project) as opened:
            reference = project_reference(opened, text, log, options, compute)
            return reference, reference_model(opened, text)
    except ProjectError:
        raise MonitoringError(f"--model needs a Keel project; {text} cannot be found") from None


def _duration(text: str) -> Any:
    from keel.errors import MonitoringError
    from keel.schema import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise MonitoringError(f"--window {error}") from None


def _with_correction(settings: Any, correction: str | None) -> Any:
    import dataclasses

    from keel.errors import MonitoringError

    if correction is None:
        return settings
    if correction not in ("holm", "bonferroni", "fdr", "none"):
        raise MonitoringError(
            f"unknown --correction {correction!r}; use holm, bonferroni, fdr or none"
        )
    return dataclasses.replace(settings, correction=correction)


_COLOUR = {
    "drift": "red",
    "small_shift": "cyan",
    "no_drift": "green",
    "insufficient_data": "yellow",
    "untestable": "dim",
}


def _print_report(out: Console, report: DriftReport) -> None:
    from rich.table import Table

    version = f" of {report.model_version}" if report.model_version else ""
    out.print(
        f"[{_COLOUR[report.decision]}]{report.decision}[/] — {report.rows} rows{version} vs "
        f"{report.reference_rows} reference rows ({report.correction}, alpha {report.alpha})"
    )
    table = Table(
        "column", "role", "test", "statistic", "p (adj.)", "effect", "decision", "moved most"
    )
    for c in report.columns:
        if c.decision == "untestable":
            continue
        moved = ", ".join(f"{m.bucket} {m.reference:.0%}→{m.window:.0%}" for m in c.moved[:2])
        table.add_row(
            c.column,
            c.role,
            c.test,
            f"{c.statistic:.4g}",
            f"{c.p_adjusted:.3g}",
            f"{c.effect:.3g} (≥{c.min_effect:g})",
            f"[{_COLOUR[c.decision]}]{c.decision}[/]",
            moved or (c.note or ""),
        )
    out.print(table)
    _print_apart(out, report)


def _print_apart(out: Console, report: DriftReport) -> None:
    """Small shifts (info), the model versions judged apart and the columns that could
    not be tested, each on one line."""
    small = [c for c in report.columns if c.decision == "small_shift"]
    if small:
        out.print(
            "[cyan]info[/]: small shifts, significant but under the effect gate: "
            + ", ".join(f"{c.column} ({c.effect:.3g} < {c.min_effect:g})" for c in small)
        )
    if report.other_versions:
        out.print(
            "other model versions in the window, judged apart (--model-version): "
            + ", ".join(f"{v} ({rows} rows)" for v, rows in report.other_versions.items())
        )
    untestable = [c for c in report.columns if c.decision == "untestable"]
    if untestable:
        out.print("not tested: " + ", ".join(f"{c.column} ({c.note})" for c in untestable))


def monitor(
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
    every: Annotated[str, typer.Option("--every", help="Time between cycles, e.g. 5m.")] = "5m",
    reference: ReferenceOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Roll the prediction log, check drift, raise or resolve alerts and deliver them."""
    import functools
    import time

    from keel.monitoring.cycle import run_cycle

    pause = _duration(every).total_seconds()
    while True:
        with _project(project) as opened:
            data = run_cycle(opened, reference).to_dict()
        emit(as_json, data, functools.partial(_print_cycle, data=data))
        if once:
            return
        time.sleep(pause)


def _project(path: Path | None) -> Any:
    from keel.project import Project

    return Project.open(path)


def _print_cycle(out: Console, *, data: dict[str, Any]) -> None:
    drift = data["drift"]
    version = f" of {drift['model_version']}" if drift.get("model_version") else ""
    out.print(
        f"drift: {drift['decision']} ({drift['rows']} rows{version}; drifted: {drift['drifted']})"
    )
    if drift.get("small_shifts"):
        out.print(f"  small shifts (info): {', '.join(drift['small_shifts'])}")
    for rule, action in data["alerts"].items():
        out.print(f"  alert {rule}: {action}")
    d = data["deliveries"]
    out.print(f"  deliveries: {d['delivered']} sent, {d['failed']} failed, {d['pending']} pending")
