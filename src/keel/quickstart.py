"""`keel quickstart`: the whole story on the example project, with real processes.

Each step is a function that takes the project and returns what it did, with figures,
so the CLI can print a concise story (or JSON) and a test can check every step.
Serving is a real ``keel serve`` process on a free loopback port, driven over HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.errors import KeelError
from keel.project import Project
from keel.scaffold import init_project

__all__ = ["Step", "run_story"]

READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Step:
    name: str
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.name, "summary": self.summary, **self.figures}


def run_story(
    folder: Path, *, rows: int, seed: int, say: Callable[[str], None] = lambda _: None
) -> Iterator[Step]:
    """Create the example project in ``folder`` and tell the story step by step."""
    say("generating the example data")
    created = init_project(folder, rows=rows, seed=seed)
    yield Step(
        "init",
        f"created {created.root} with {created.customers} customers and {created.events} events",
        {"root": str(created.root), "customers": created.customers, "events": created.events},
    )
    with Project.open(created.root) as project:
        say("ingesting and validating")
        yield _ingest(project)
        say("materializing features")
        yield _features(project)
        say("training and gating")
        yield _train(project)
        say("serving real traffic")
        yield from _serve(project)


def _ingest(project: Project) -> Step:
    from keel.data.demo import data_story

    runs = data_story(project)
    published = [r for r in runs if r.status in ("published", "already_ingested")]
    refused = [r for r in runs if r.status == "quarantined"]
    reasons = sorted({f.check for r in refused if r.report for f in r.report.failures})
    return Step(
        "ingest",
        f"published {len(published)} versions; a faulty batch was quarantined by "
        f"{len(reasons)} checks ({', '.join(reasons[:4])})",
        {"published": len(published), "quarantined": len(refused), "failed_checks": reasons},
    )


def _features(project: Project) -> Step:
    from keel.features import FeatureStore

    store = FeatureStore.open(project)
    try:
        done = store.materialize()
        check = store.check(store.sample_entities(50))
    finally:
        store.close()
    written = sum(m.written for m in done)
    agree = check.checked - len({m["entity"] for m in check.mismatches})
    return Step(
        "features",
        f"materialized {len(done)} feature views ({written} entity rows); online and offline "
        f"agree on {agree}/{check.checked} sampled entities",
        {"views": len(done), "written": written, "skew_mismatches": len(check.mismatches)},
    )


def _train(project: Project) -> Step:
    from keel.training import deploy, train

    result = train(project)
    version = result.version
    if result.decision is None or not result.decision.passed:
        raise KeelError(f"the example model did not pass its gate: {result.decision}")
    deploy(project, str(version.version), reason="quickstart: first model")
    auc = version.metrics.get("roc_auc") or 0.0
    return Step(
        "train",
        f"trained {version.name}@{version.version} (roc_auc {auc:.3f}), passed the gate and "
        "deployed it to production",
        {"version": version.version, "roc_auc": auc, "gate": "passed"},
    )


def _serve(project: Project) -> Iterator[Step]:
    import httpx

    from keel.serving.keys import KeyStore

    # the story sends requests back to back: its key gets more than keel.yaml's default
    key, _ = KeyStore(project.store).create(
        "quickstart", ["predict"], actor="quickstart", rate_limit="1000/second"
    )
    port = _free_port()
    server = _start_server(project.root, port)
    base = f"http://127.0.0.1:{port}"
    customers = _customer_ids(project, TRAFFIC)
    try:
        _wait_ready(base, server)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
            normal = _send(client, customers)
            updated = _drifted_update(project)
            drifted = _send(client, customers)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    served = normal["ok"] + drifted["ok"]
    yield Step(
        "serve",
        f"served {served} real HTTP predictions on {base} looking features up by customer "
        f"(p50 {normal['p50_ms']:.1f} ms, p99 {normal['p99_ms']:.1f} ms), then stopped cleanly",
        {"requests": served, **normal, "exit_code": server.returncode},
    )
    yield _drift_check(project, updated)
    yield _monitor(project)


TRAFFIC = 200


def _customer_ids(project: Project, count: int) -> list[str]:
    from keel.features.io import read_table

    customers = read_table(project.root / "data" / "customers.csv")
    return [str(c) for c in customers["customer_id"].head(count)]


def _drifted_update(project: Project) -> int:
    """A batch of customer updates arrives with higher charges and more premium plans."""
    from keel.data import ingest
    from keel.features import FeatureStore
    from keel.features.io import read_table, write_table
    from keel.features.service import utc_now

    frame = read_table(project.root / "data" / "customers.csv").head(TRAFFIC)
    frame["monthly_charges"] = (frame["monthly_charges"] * 1.8 + 20).round(2)
    frame.loc[frame.index % 2 == 0, "plan"] = "premium"
    frame["updated_at"] = utc_now().replace(microsecond=0)
    write_table(frame, project.root / "data" / "customers-update.csv")
    ingest(project, "customers")
    store = FeatureStore.open(project)
    try:
        store.materialize()
    finally:
        store.close()
    return len(frame)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "keel", "serve", "--port", str(port), "--project", str(root)]
    log = (root / ".keel" / "quickstart-server.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise KeelError("the model server exited at start; see .keel/quickstart-server.log")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise KeelError("the model server did not become ready; see .keel/quickstart-server.log")


def _send(client: Any, customers: list[str]) -> dict[str, Any]:
    latencies, failed = [], 0
    for customer in customers:
        started = time.perf_counter()
        response = client.post("/v1/predict", json={"instances": [{"customer_id": customer}]})
        latencies.append((time.perf_counter() - started) * 1000)
        failed += response.status_code != 200
    latencies.sort()
    return {
        "ok": len(customers) - failed,
        "failed": failed,
        "p50_ms": latencies[len(latencies) // 2] if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
    }


def _drift_check(project: Project, updated: int) -> Step:
    import json

    command = [
        sys.executable, "-m", "keel", "drift", "--model", "production", "--json",
        "--project", str(project.root), "--last", str(TRAFFIC),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if not done.stdout.strip():
        raise KeelError(f"keel drift failed: {done.stderr.strip()}")
    report = json.loads(done.stdout)
    drifted = [c["column"] for c in report.get("columns", []) if c.get("decision") == "drift"]
    return Step(
        "drift",
        f"{updated} customer updates arrived with higher charges and more premium plans; "
        f"drift found in: {', '.join(drifted) or 'no column'}",
        {"drifted_columns": drifted},
    )


def _monitor(project: Project) -> Step:
    """One worker cycle: the drift raises its alert and the retrain trigger trains."""
    import json

    command = [sys.executable, "-m", "keel", "monitor", "--once", "--json"]
    done = subprocess.run(
        [*command, "--project", str(project.root)], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise KeelError(f"keel monitor failed: {done.stderr.strip()}")
    cycle = json.loads(done.stdout)
    raised = sorted(rule for rule, action in cycle["alerts"].items() if action != "none")
    retrain = cycle.get("retrain") or {}
    candidate = _latest_candidate(project)
    return Step(
        "monitor",
        f"the worker's cycle raised {', '.join(raised) or 'no alert'}; the retrain trigger "
        f"{'trained ' + candidate if retrain.get('run') and candidate else 'did not run'}",
        {"alerts": raised, "retrained": bool(retrain.get("run")), "candidate": candidate},
    )


def _latest_candidate(project: Project) -> str | None:
    from keel.training import Registry

    latest = Registry(project.store).latest()
    if latest is None or latest.status == "production":
        return None
    gate = "passed" if latest.gate_passed else "failed"
    return f"{latest.name}@{latest.version} (gate {gate})"
