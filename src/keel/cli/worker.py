"""``keel worker`` and ``keel up``: monitoring on a schedule, and the whole system at once.

Every ``--every`` the worker runs the monitoring cycle (roll the prediction log, check
drift, raise or resolve alerts, deliver them through the outbox, run the retrain trigger)
and then the delivery step (judge the shadow and the canary, send a retrained candidate
that passed its gate to shadow): the closed loop. ``--once`` runs one cycle and exits. A
cycle that fails is reported and the next one runs: a worker outlives the problems it
reports. SIGTERM or Ctrl-C ends it after the current cycle, with exit code 0. ``keel up``
starts ``keel serve`` as a child process and runs the worker beside it.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit

if TYPE_CHECKING:
    from rich.console import Console

Every = Annotated[str, typer.Option("--every", help="Time between cycles, e.g. 30s or 5m.")]


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("up")(up)


def worker(
    every: Every = "1m",
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Serve drift, performance, alert, rollout and delivery gauges at /metrics "
            "on this port, with probes at /healthz (alive) and /readyz (a cycle finished "
            "within 3 intervals, store readable); no key: bind it where only the scraper "
            "and the probes reach it.",
        ),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address for --metrics-port.")] = "127.0.0.1",
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run monitoring, alerts, retraining and rollouts on a schedule until SIGTERM."""
    pause = _seconds(every)
    if once:
        data = _cycle(project)
        emit(as_json, data, functools.partial(_print, data=data))
        if not data["ok"]:
            raise typer.Exit(1)
        return
    gauges = None
    if metrics_port is not None:
        from keel.monitoring.gauges import WorkerGauges

        gauges = WorkerGauges(every=pause)
        gauges.serve(metrics_host, metrics_port)
    _loop(project, pause, _stop_on_signals(), as_json, gauges=gauges)


def up(
    host: Annotated[str, typer.Option(help="Address for the model server.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port for the model server.")] = 8000,
    every: Every = "1m",
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve the production model and run the worker beside it, until SIGTERM or Ctrl-C."""
    pause = _seconds(every)  # a bad --every fails before anything starts
    stop = _stop_on_signals()
    server = _start_server(host, port, project)
    if not as_json:
        from keel.cli._common import console

        console(stderr=True).print(f"serving on http://{host}:{port}, worker every {every}")
    try:
        _loop(project, pause, stop, as_json, alive=lambda: server.poll() is None)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        code = server.wait()
    if code not in (0, -signal.SIGTERM):
        raise typer.Exit(code)


def _loop(
    project: Path | None,
    pause: float,
    stop: threading.Event,
    as_json: bool,
    alive: Any = lambda: True,
    gauges: Any = None,
) -> None:
    while not stop.is_set() and alive():
        data = _cycle(project)
        if gauges is not None:
            _refresh(gauges, project, data)
        emit(as_json, data, functools.partial(_print, data=data))
        sys.stdout.flush()
        stop.wait(pause)


def _refresh(gauges: Any, path: Path | None, data: dict[str, Any]) -> None:
    """Update the gauges after a cycle; a store that is down leaves the last values."""
    import time

    from sqlalchemy import exc

    from keel.errors import KeelError
    from keel.project import Project

    try:
        with Project.open(path) as project:
            gauges.refresh(project, data, time.time())
    except (KeelError, exc.OperationalError, exc.InterfaceError):
        gauges.failed()


def _cycle(path: Path | None) -> dict[str, Any]:
    """One cycle; a failure is a result to report, not the end of the worker."""
    from sqlalchemy import exc

    from keel.errors import KeelError
    from keel.monitoring.cycle import run_cycle
    from keel.project import Project

    try:
        with Project.open(path) as project:
            try:
                monitoring: dict[str, Any] = {"ok": True, **run_cycle(project).to_dict()}
            except KeelError as error:
                monitoring = {"ok": False, "error": str(error)}
            return {**monitoring, "delivery": _delivery(project)}
    except KeelError as error:
        return {"ok": False, "error": str(error)}
    except (exc.OperationalError, exc.InterfaceError) as error:  # the store left mid-cycle
        reason = str(error.orig or error).strip().splitlines()[0]
        return {"ok": False, "error": f"the metadata store stopped answering ({reason})"}


def _delivery(project: Any) -> dict[str, Any]:
    """Judge the shadow and canary, stage a new candidate; a failure does not stop the rest."""
    from keel.delivery.advance import advance_delivery
    from keel.errors import KeelError

    try:
        return advance_delivery(project)
    except KeelError as error:
        return {"error": str(error)}


def _print(out: Console, *, data: dict[str, Any]) -> None:
    if not data["ok"]:
        out.print(f"[yellow]![/] monitoring skipped: {data['error']}")
    else:
        drift = data["drift"]
        alerts = ", ".join(f"{rule} {action}" for rule, action in data["alerts"].items())
        out.print(f"drift: {drift['decision']} ({drift['rows']} rows); alerts: {alerts or 'none'}")
        retrain = data.get("retrain") or {}
        if retrain.get("run"):
            out.print(f"retrained ({', '.join(retrain['reasons'])})")
    for line in _delivery_lines(data.get("delivery") or {}):
        out.print(line)


def _delivery_lines(delivery: dict[str, Any]) -> list[str]:
    if "error" in delivery:
        return [f"[yellow]![/] rollout step skipped: {delivery['error']}"]
    lines = []
    if "shadow" in delivery:
        shadow = delivery["shadow"]
        lines.append(f"shadow @{shadow['version']}: {shadow['action']} ({shadow['reason']})")
    if "canary" in delivery:
        canary = delivery["canary"]
        lines.append(
            f"canary @{canary['version']}: {canary['action']} at {canary['share']:g}% "
            f"({canary['reason']})"
        )
    if "candidate" in delivery:
        candidate = delivery["candidate"]
        lines.append(f"candidate @{candidate['version']}: {candidate['action']}")
    return lines


def _seconds(text: str) -> float:
    from keel.errors import ConfigError
    from keel.schema import parse_duration

    try:
        return float(parse_duration(text).total_seconds())
    except ValueError as error:
        raise ConfigError(f"--every: {error}") from None


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _start_server(host: str, port: int, project: Path | None) -> subprocess.Popen[bytes]:
    from keel.serving.orphan import serve_child_env

    command = [sys.executable, "-m", "keel", "serve", "--host", host, "--port", str(port)]
    if project is not None:
        command += ["--project", str(project)]
    return subprocess.Popen(command, env=serve_child_env())
