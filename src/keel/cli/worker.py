"""``keel worker`` and ``keel up``: monitoring on a schedule, and the whole system at once.

The worker runs the monitoring cycle (roll the prediction log, check drift, raise or
resolve alerts, deliver them through the outbox, run the retrain trigger) every
``--every``. A cycle that fails is reported and the next one runs: a worker outlives the
problems it reports. SIGTERM or Ctrl-C ends it after the current cycle, with exit code 0.
``keel up`` starts ``keel serve`` as a child process and runs the worker beside it.
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


def worker(every: Every = "1m", project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Run monitoring, alert delivery and the retrain trigger on a schedule until SIGTERM."""
    stop = _stop_on_signals()
    _loop(project, _seconds(every), stop, as_json)


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
) -> None:
    while not stop.is_set() and alive():
        data = _cycle(project)
        emit(as_json, data, functools.partial(_print, data=data))
        sys.stdout.flush()
        stop.wait(pause)


def _cycle(path: Path | None) -> dict[str, Any]:
    """One monitoring cycle; a failure is a result to report, not the end of the worker."""
    from keel.errors import KeelError
    from keel.monitoring.cycle import run_cycle
    from keel.project import Project

    try:
        with Project.open(path) as project:
            rollout = _rollout(project)
            return {"ok": True, **rollout, **run_cycle(project).to_dict()}
    except KeelError as error:
        return {"ok": False, "error": str(error)}


def _rollout(project: Any) -> dict[str, Any]:
    """Advance the running canary, if any; its failure does not stop the monitoring cycle."""
    import time

    from keel.delivery.advance import advance_rollout
    from keel.errors import KeelError

    try:
        done = advance_rollout(project, time.time())
    except KeelError as error:
        return {"rollout": {"error": str(error)}}
    return {} if done is None else {"rollout": done}


def _print(out: Console, *, data: dict[str, Any]) -> None:
    if not data["ok"]:
        out.print(f"[yellow]![/] cycle skipped: {data['error']}")
        return
    drift = data["drift"]
    alerts = ", ".join(f"{rule} {action}" for rule, action in data["alerts"].items()) or "none"
    out.print(f"drift: {drift['decision']} ({drift['rows']} rows); alerts: {alerts}")
    if "rollout" in data:
        out.print(f"rollout: {data['rollout']}")


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
    command = [sys.executable, "-m", "keel", "serve", "--host", host, "--port", str(port)]
    if project is not None:
        command += ["--project", str(project)]
    return subprocess.Popen(command)
