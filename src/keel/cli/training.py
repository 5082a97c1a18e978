"""``keel train``, ``keel gate``, ``keel deploy``, ``keel status`` and ``keel registry``.

Only typer and ``keel.cli._common`` are imported here; each command imports its work
inside its body. ``keel status --json`` is usually answered before this module is
imported (``keel.cli.entry``); both paths print ``keel.training.status``'s answer.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._common import JsonOpt, ProjectOpt, console, emit, open_project

if TYPE_CHECKING:
    from rich.console import Console

    from keel.project import Project
    from keel.training.classes import ModelClasses
    from keel.training.gate import GateDecision

registry_app = typer.Typer(
    help="The model registry: list, show, diff and import versions.", no_args_is_help=True
)

VersionArg = Annotated[str, typer.Argument(help="A version number, or latest / production.")]


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("gate")(gate)
    app.command("deploy")(deploy)
    app.command("status")(status)
    app.add_typer(registry_app, name="registry")


def train(
    config: Annotated[
        Path | None,
        typer.Option(help="A file with training: (and gate:) sections, instead of keel.yaml's."),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train, register and gate a model version from the training: config.

    Exits 2 when the new version fails its gate (it stays registered, as a candidate).
    """
    from keel.training.pipeline import train as run_training
    from keel.training.registry import Registry

    training, policy = None, None
    if config is not None:
        from keel.training.configfile import load_training_file

        training, policy = load_training_file(config)
    with (
        open_project(project) as opened,
        _spinner("training", as_json),
    ):
        result = run_training(opened, training, policy)
        record = Registry(opened.store).record(result.version.version)
    data = {
        "version": result.version.to_dict(),
        "data": record["data"],
        "classes": None if result.classes is None else result.classes.to_dict(),
        "gate": None if result.decision is None else result.decision.to_dict(),
    }

    def human(out: Console) -> None:
        version = result.version
        _say(
            out,
            f"[green]✓[/] trained {version.label} on {version.data_rows} rows "
            f"({version.data_ref}) in {version.duration_s:.1f}s",
        )
        missing = record["data"].get("missing_labels")
        if missing:
            target = record["training"]["target"]
            _say(out, f"  [yellow]{missing:,} rows have no {target} label[/]: left out of training")
        _say(out, "  metrics: " + _metrics_text(version.metrics))
        if result.classes is not None and result.classes.task == "classification":
            _say(out, "  " + _classes_text(result.classes))
        if result.decision is not None:
            _print_decision(out, result.decision)

    emit(as_json, data, human)
    if result.decision is not None and not result.decision.passed:
        raise typer.Exit(2)


def gate(
    version: VersionArg = "latest", project: ProjectOpt = None, as_json: JsonOpt = False
) -> None:
    """Run the evaluation gate on a version and record the decision; exits 2 if it fails."""
    from keel.training.gating import run_gate
    from keel.training.registry import Registry

    with (
        open_project(project) as opened,
        _spinner("gating", as_json),
    ):
        resolved = Registry(opened.store).resolve(version)
        decision = run_gate(opened, resolved.version)
    emit(
        as_json,
        {"version": resolved.version, **decision.to_dict()},
        lambda out: _print_decision(out, decision),
    )
    if not decision.passed:
        raise typer.Exit(2)


def deploy(
    version: VersionArg = "latest",
    force: Annotated[bool, typer.Option(help="Deploy without a passing gate decision.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why: recorded in the status history.")] = None,
    shadow: Annotated[bool, typer.Option(help="Deploy as the shadow of production.")] = False,
    canary: Annotated[bool, typer.Option(help="Deploy as a canary with a traffic share.")] = False,
    share: Annotated[
        float | None, typer.Option(help="The canary's traffic percentage (first step).")
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a gated version the production model (or its shadow or canary), with who and why.

    ``latest`` is the newest version that passed its gate (with --force, the newest one).
    """
    from keel.errors import DeployRefused
    from keel.training.gating import deploy as run_deploy

    if shadow and canary:
        raise DeployRefused("choose one of --shadow and --canary")
    kind = "shadow" if shadow else "canary" if canary else "production"
    with open_project(project) as opened:
        if version.strip().lower() == "latest" and not force:
            version = _newest_passed(opened)
        if kind == "production":
            deployed = run_deploy(opened, version, force=force, reason=reason)
        else:
            from keel.delivery.staging import StageKind, stage

            staged: StageKind = "shadow" if shadow else "canary"
            deployed = stage(opened, version, staged, share=share, force=force, reason=reason)
    emit(
        as_json,
        deployed.to_dict(),
        lambda out: _say(out, f"[green]✓[/] {deployed.label} is now the {kind} model"),
    )


def _newest_passed(project: Project) -> str:
    """``latest`` for a deploy: the newest version whose gate passed, not merely the newest."""
    from keel.errors import DeployRefused
    from keel.training.registry import Registry

    passed = [v for v in Registry(project.store).versions(limit=100_000) if v.gate_passed]
    if not passed:
        raise DeployRefused(
            "no model version has passed its gate yet; run `keel train` (the gate runs after "
            "it), or deploy a version by number with --force --reason 'why'"
        )
    return str(passed[0].version)


def status(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """What runs in production, trained when, on what data, and how it compares."""
    from keel.training.status import read_status, render_status

    data = read_status(project)
    emit(as_json, data, lambda out: _say(out, "\n".join(render_status(data))))


@registry_app.command("list")
def registry_list(
    limit: Annotated[int, typer.Option(help="How many versions, newest first.")] = 20,
    status_: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List model versions, newest first."""
    from keel.training.registry import Registry

    with open_project(project) as opened:
        versions = Registry(opened.store).versions(limit=limit, status=status_)
    emit(as_json, [v.to_dict() for v in versions], lambda out: _print_list(out, versions))


@registry_app.command("show")
def registry_show(
    version: VersionArg, project: ProjectOpt = None, as_json: JsonOpt = False
) -> None:
    """One version: lineage, metrics, gate decision and status history."""
    from keel.training.registry import Registry

    with open_project(project) as opened:
        registry = Registry(opened.store)
        found = registry.resolve(version)
        data = {
            **found.to_dict(),
            "record": registry.record(found.version),
            "gate": registry.gate_decision(found.version),
            "history": [event.to_dict() for event in registry.history(found.version)],
        }
    emit(as_json, data, lambda out: _print_show(out, data))


@registry_app.command("diff")
def registry_diff(
    first: VersionArg, second: VersionArg, project: ProjectOpt = None, as_json: JsonOpt = False
) -> None:
    """Metric deltas, config differences and data differences between two versions."""
    from keel.training.diff import diff_records
    from keel.training.registry import Registry

    with open_project(project) as opened:
        registry = Registry(opened.store)
        a, b = registry.resolve(first), registry.resolve(second)
        data = diff_records(
            a.version, registry.record(a.version), b.version, registry.record(b.version)
        )
    emit(as_json, data, lambda out: _print_diff(out, data))


@registry_app.command("import")
def registry_import(
    model: Annotated[
        str,
        typer.Argument(
            help="A joblib or pickle file of a fitted model, an MLflow model folder, or an "
            "MLflow runs:/ or models:/ URI."
        ),
    ],
    sample: Annotated[Path, typer.Option(help="CSV/Parquet rows with features and target.")],
    target: Annotated[str, typer.Option(help="The target column in the sample.")],
    schema: Annotated[
        Path | None,
        typer.Option(
            help="YAML/JSON list of feature columns (default: every sample column but the "
            "target; an MLflow model's signature)."
        ),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an existing pilot model. Pickles run code when loaded: import only your own."""
    from keel.integrations.mlflow import import_mlflow, is_mlflow_model
    from keel.training.importer import PICKLE_WARNING, import_model

    if not as_json:
        console(stderr=True).print(f"[yellow]warning:[/] {PICKLE_WARNING}", soft_wrap=True)
    with open_project(project) as opened:
        if is_mlflow_model(model):
            version = import_mlflow(opened, model, sample, target)
        else:
            version = import_model(opened, Path(model), sample, target, schema)
    emit(
        as_json,
        version.to_dict(),
        lambda out: _say(out, f"[green]✓[/] imported {model} as {version.label}"),
    )


@registry_app.command("export")
def registry_export(
    version: Annotated[str, typer.Argument(help="A version number, or latest / production.")],
    folder: Annotated[Path, typer.Argument(help="The folder to write (must not exist).")],
    format: Annotated[
        str, typer.Option("--format", help="The model format to write: mlflow.")
    ] = "mlflow",
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a version as a model another tool loads (MLflow's pyfunc)."""
    from keel.errors import RegistryError
    from keel.integrations.mlflow import export_mlflow
    from keel.training.registry import Registry

    if format != "mlflow":
        raise RegistryError(f"--format {format} is not a format Keel writes; use --format mlflow")
    with open_project(project) as opened:
        found = Registry(opened.store).resolve(version)
        export_mlflow(opened, found, folder)
    data = {"version": found.version, "format": format, "path": str(folder)}
    message = f"[green]✓[/] wrote {found.label} as an MLflow model to {folder}"
    emit(as_json, data, lambda out: _say(out, message))


# -- printing for people ----------------------------------------------------------------


def _spinner(text: str, quiet: bool) -> AbstractContextManager[Any]:
    """A spinner on stderr while work runs; nothing when the output is JSON."""
    return nullcontext() if quiet else console(stderr=True).status(text)


def _say(out: Console, text: str) -> None:
    out.print(text, soft_wrap=True)  # long lines stay whole, so they can be grepped


def _metrics_text(metrics: dict[str, Any]) -> str:
    from keel.training.status import metrics_text

    return metrics_text(metrics)


def _classes_text(classes: ModelClasses) -> str:
    """Which class the binary metrics are about, and why; or the classes of a multiclass."""
    if not classes.binary:
        listed = ", ".join(map(repr, classes.classes))
        macro = "precision, recall, F1, ROC AUC and average precision are macro averages"
        return f"classes: {listed} (many classes: {macro})"
    counts = dict(zip(classes.classes, classes.counts, strict=False))
    rows = sum(classes.counts)
    share = f": {counts.get(classes.positive, 0)} of {rows} training rows" if rows else ""
    return f"positive class: {classes.positive!r} ({classes.chosen_by}{share})"


def _when(timestamp: float | None) -> str:
    from datetime import UTC, datetime

    return (
        "-" if timestamp is None else f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M} UTC"
    )


def _print_decision(out: Console, decision: GateDecision) -> None:
    verdict = "[green]passed[/]" if decision.passed else "[red]failed[/]"
    _say(out, f"gate {verdict}")
    for check in decision.checks:
        detail = f"  ({check.detail})" if check.detail else ""
        if not check.judged:  # no tick and no inequality: nothing was decided
            _say(out, f"  [yellow]○[/] {check.name}: not judged{detail}")
            continue
        mark = "[green]✓[/]" if check.passed else "[red]✗[/]"
        value = "n/a" if check.value is None else f"{check.value:g}"
        statement = check.statement or f"{value} {check.threshold}"
        _say(out, f"  {mark} {check.name}: {statement}{detail}")


def _print_list(out: Console, versions: list[Any]) -> None:
    from rich.table import Table

    table = Table("version", "status", "gate", "trained", "data", "metrics")
    for v in versions:
        gated = {True: "passed", False: "failed", None: "-"}[v.gate_passed]
        table.add_row(
            str(v.version),
            v.status,
            gated,
            _when(v.created_at),
            v.data_ref,
            _metrics_text(v.metrics),
        )
    out.print(table)  # a table wraps its own cells


def _print_show(out: Console, data: dict[str, Any]) -> None:
    record = data["record"]
    _say(
        out,
        f"[bold]{data['name']}@{data['version']}[/] ({data['status']}), "
        f"{data['source']} by {data['created_by']} at {_when(data['created_at'])}",
    )
    lineage = _lineage_of(record)
    ref = "" if lineage["data_lineage"] else f"{data['data_ref']}, "
    _say(out, f"  data: {ref}{_data_text({**data, **lineage})}")
    _say(
        out,
        f"  config hash: {data['config_hash'][:12]}  artifact: {data['artifact'][:12]} "
        f"({data['size_bytes']} bytes)",
    )
    code = record.get("code") or {}
    _say(
        out,
        f"  code: {code.get('git_commit') or 'not a git repo'}"
        f"{' (dirty)' if code.get('dirty') else ''}",
    )
    _say(out, "  metrics: " + _metrics_text(data["metrics"]))
    if record.get("classes") and record["classes"]["task"] == "classification":
        from keel.training.classes import ModelClasses

        _say(out, "  " + _classes_text(ModelClasses.from_dict(record["classes"])))
    gate = data["gate"]
    _say(
        out,
        "  gate: not run"
        if gate is None
        else f"  gate: {'passed' if gate['passed'] else 'failed'} at {_when(gate['at'])}",
    )
    for event in data["history"]:
        forced = " [red](forced)[/]" if event["forced"] else ""
        _say(
            out,
            f"  {_when(event['at'])} {event['from_status'] or '-'} → "
            f"{event['to_status']} by {event['actor']}: {event['reason']}{forced}",
        )


def _lineage_of(record: dict[str, Any]) -> dict[str, Any]:
    data = record.get("data") or {}
    return {"data_lineage": data.get("lineage"), "missing_labels": data.get("missing_labels")}


def _data_text(version: dict[str, Any]) -> str:
    from keel.training.status import data_text

    return data_text(version)


def _print_diff(out: Console, data: dict[str, Any]) -> None:
    _say(out, f"version {data['a']} → {data['b']}")
    for name, delta in data["metrics"].items():
        _say(out, f"  {name}: {delta['a']} → {delta['b']} ({delta['delta']})")
    for key, change in data["config"].items():
        _say(out, f"  config {key}: {change['a']!r} → {change['b']!r}")
    for key, change in data["data"].items():
        _say(out, f"  data {key}: {change['a']!r} → {change['b']!r}")
