"""`keel quickstart`: the whole story on the example project, with real processes.

Each step is a function that takes the project and returns what it did, with figures,
so the CLI can print a concise story (or JSON) and a test can check every step.
Serving is a real ``keel serve`` process on a free loopback port, driven over HTTP.
"""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
        yield from _serve(project, say)


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


def _serve(project: Project, say: Callable[[str], None]) -> Iterator[Step]:
    from keel.serving.keys import KeyStore

    # the story sends requests as fast as it can: its key gets more than keel.yaml's default
    key, _ = KeyStore(project.store).create(
        "quickstart", ["predict"], actor="quickstart", rate_limit="100000/second"
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    customers = _current_customers(project)
    server: subprocess.Popen[bytes] | None = None
    try:
        with _signals_held(signal.SIGTERM, signal.SIGINT):
            server = _start_server(project.root, port)
        _wait_ready(base, server)
        with Traffic(base, key) as traffic:
            normal = traffic.send(customers[:TRAFFIC], threads=1)  # latency, one at a time
            updated = _drifted_update(project, customers[:TRAFFIC])
            drifted = traffic.send(customers[:TRAFFIC])
            yield Step(
                "serve",
                f"served {normal.ok + drifted.ok} real HTTP predictions on {base} looking "
                f"features up by customer (p50 {normal.p50_ms:.1f} ms, p99 {normal.p99_ms:.1f} "
                "ms)",
                {"requests": normal.ok + drifted.ok, **normal.to_dict()},
            )
            _settle(project, traffic)
            yield _drift_check(project, updated)
            say("the worker's cycle: alerts and retraining")
            retrain = _retrain(project)
            yield retrain
            if retrain.figures.get("staged") == "shadow":
                say("shadowing the candidate")
                shadow = _shadow(project, traffic, customers)
                yield shadow
                if shadow.figures.get("action") == "canary":
                    say("rolling the candidate out")
                    yield _canary(project, traffic, customers)
            say("a broken candidate goes to canary")
            yield _bad_candidate(project, traffic, customers)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    assert server is not None
    yield Step(
        "stop",
        f"stopped the model server cleanly (exit code {server.returncode})",
        {"exit_code": server.returncode},
    )


TRAFFIC = 200
MAX_ROUNDS = 12  # traffic-then-worker rounds before a rollout phase is called stuck
MAX_BURSTS = 16  # bursts of traffic in a rollout phase before it is called stuck


@dataclass(frozen=True)
class Sent:
    """What one burst of requests got back."""

    ok: int
    failed: int
    p50_ms: float
    p99_ms: float
    versions: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "failed": self.failed, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms}


class Traffic:
    """Real HTTP predictions, one customer per request, from many threads at once.

    The example model costs about 5 ms a call however few rows it scores (sklearn's fixed
    cost per call), so the server answers concurrent requests in one call: on two cores 16
    clients get about 430 answers a second, 4 about 200.
    """

    def __init__(self, base: str, key: str, threads: int = 16) -> None:
        import httpx

        self._client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {key}"},
            limits=httpx.Limits(max_connections=threads),
        )
        self._threads = threads
        self.answered = 0  # every request answered so far, to know when all are logged

    def send(self, customers: list[str], threads: int | None = None) -> Sent:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads or self._threads) as pool:
            answers = list(pool.map(self._one, customers))
        latencies = sorted(latency for latency, _ in answers)
        versions: dict[str, int] = {}
        for _, version in answers:
            if version is not None:
                versions[version] = versions.get(version, 0) + 1
        failed = sum(version is None for _, version in answers)
        self.answered += len(answers) - failed
        return Sent(
            ok=len(answers) - failed,
            failed=failed,
            p50_ms=latencies[len(latencies) // 2] if latencies else 0.0,
            p99_ms=latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
            versions=versions,
        )

    def _one(self, customer: str) -> tuple[float, str | None]:
        import httpx

        started = time.perf_counter()
        try:
            response = self._client.post(
                "/v1/predict", json={"instances": [{"customer_id": customer}]}
            )
        except httpx.TransportError as error:
            raise KeelError(f"the model server did not answer: {error!r}") from error
        latency = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            return latency, None
        return latency, str(response.json()["predictions"][0]["model_version"])

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()


def _current_customers(project: Project) -> list[str]:
    """The customers still with the business, whose churn risk someone would ask for.

    A customer who churned has closed their account: no logins, payments or tickets since.
    The model never saw such a customer (each label is drawn while the customer is still
    active), so scoring them would look like drift in every activity feature.
    """
    from keel.features.io import read_table

    training = project.config.training
    if training is None or training.labels is None:
        raise KeelError("keel.yaml has no training labels to tell who churned")
    labels = read_table(project.root / training.labels)
    left = set(labels.loc[labels[training.target] == 1, "customer_id"].astype(str))
    customers = read_table(project.root / "data" / "customers.csv")["customer_id"].astype(str)
    return [c for c in customers.drop_duplicates() if c not in left]


def _drifted_update(project: Project, customers: list[str]) -> int:
    """A batch of updates to ``customers`` arrives with higher charges and more premium
    plans; nothing else about them changes."""
    from keel.data import ingest
    from keel.features import FeatureStore
    from keel.features.io import read_table, write_table
    from keel.features.service import utc_now

    frame = read_table(project.root / "data" / "customers.csv")
    frame = frame[frame["customer_id"].astype(str).isin(customers)].reset_index(drop=True)
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


@contextmanager
def _signals_held(*signums: int) -> Iterator[None]:
    """Hold ``signums`` until the block ends, then deliver them to their own handlers.

    A signal whose handler raises (Ctrl-C, and SIGTERM under ``keel quickstart``) can
    land while ``Popen`` waits for its child's exec: the exception leaves ``Popen``
    with the child running and no handle to stop it. Held, it lands after the handle
    is kept. Blocking the signals instead would pass the mask on to the child.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only, and only it may set them
        return
    caught: list[int] = []
    previous = {signum: signal.signal(signum, lambda n, _: caught.append(n)) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in caught:
            signal.raise_signal(signum)


def _start_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    from keel.serving.orphan import serve_child_env

    command = [sys.executable, "-m", "keel", "serve", "--port", str(port), "--project", str(root)]
    log = (root / ".keel" / "quickstart-server.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=serve_child_env())


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


def _drift_check(project: Project, updated: int) -> Step:
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


def _worker_cycle(project: Project) -> dict[str, Any]:
    """One cycle of a real ``keel worker --once`` process, as JSON."""
    command = [sys.executable, "-m", "keel", "worker", "--once", "--json"]
    done = subprocess.run(
        [*command, "--project", str(project.root)], capture_output=True, text=True, timeout=600
    )
    if not done.stdout.strip():
        raise KeelError(f"keel worker failed: {done.stderr.strip()}")
    cycle: dict[str, Any] = json.loads(done.stdout)
    if not cycle["ok"]:
        raise KeelError(f"keel worker failed: {cycle['error']}")
    return cycle


def _settle(project: Project, traffic: Traffic) -> None:
    """Wait until every answered request is in the log's committed segments, so the worker
    and ``keel drift`` read all of it (the server seals its spool every second here)."""
    from keel.monitoring.log import PredictionLog

    deadline = time.monotonic() + READY_TIMEOUT_S
    log = PredictionLog.for_project(project)
    try:
        while time.monotonic() < deadline:
            log.flush()  # roll what the server sealed, as the worker would
            frame = log.read()
            live = 0 if frame.empty else int((frame["route"] != "shadow").sum())
            if live >= traffic.answered:
                return
            time.sleep(0.3)
    finally:
        log.close(flush=False)
    raise KeelError("the model server did not log its predictions in time")


def _retrain(project: Project) -> Step:
    """A worker cycle: the drift raises its alert, the trigger retrains, the candidate shadows."""
    cycle = _worker_cycle(project)
    raised = sorted(rule for rule, action in cycle["alerts"].items() if action != "none")
    retrain = cycle.get("retrain") or {}
    candidate = (cycle.get("delivery") or {}).get("candidate") or {}
    trained = _latest(project)
    staged = candidate.get("action")
    summary = (
        f"the worker's cycle raised {', '.join(raised) or 'no alert'}; the retrain trigger "
        + (f"trained {trained}" if retrain.get("run") and trained else "did not run")
        + ("; the worker put it in shadow beside production" if staged == "shadow" else "")
    )
    figures = {"alerts": raised, "retrained": bool(retrain.get("run")), "candidate": trained}
    return Step("retrain", summary, {**figures, "staged": staged})


def _latest(project: Project) -> str | None:
    from keel.training import Registry

    latest = Registry(project.store).latest()
    if latest is None or latest.status == "production":
        return None
    gate = "passed" if latest.gate_passed else "failed"
    auc = latest.metrics.get("roc_auc")
    score = f"roc_auc {auc:.3f}, " if isinstance(auc, float) else ""
    return f"{latest.name}@{latest.version} ({score}gate {gate})"


def _shadow(project: Project, traffic: Traffic, customers: list[str]) -> Step:
    """Traffic until the worker promotes the shadow to canary (or rejects it)."""
    config = project.config.rollout
    size = (config.shadow.min_requests if config else 500) + 50
    sent = 0
    for _ in range(MAX_ROUNDS):
        sent += traffic.send(_take(customers, size, sent)).ok
        _settle(project, traffic)
        shadow = _worker_cycle(project)["delivery"].get("shadow") or {}
        if shadow.get("action", "hold") != "hold":
            break
    else:
        raise KeelError(f"the shadow was still undecided after {sent} requests")
    agreement = shadow.get("agreement")
    verdict = (
        "the worker promoted it to canary"
        if shadow["action"] == "canary"
        else f"the worker {shadow['action']} it: {shadow['reason']}"
    )
    return Step(
        "shadow",
        f"version {shadow['version']} answered {shadow['compared']} of the same requests off the "
        f"response path: agreement {agreement:.1%} with production, p50 "
        f"{shadow['latency_p50_ms']:.1f} ms; {verdict}",
        {k: shadow.get(k) for k in ("version", "action", "agreement", "compared", "errors")},
    )


def _canary(project: Project, traffic: Traffic, customers: list[str]) -> Step:
    """Traffic until the worker promotes the canary or rolls it back."""
    decided, shares, sent = _roll(project, traffic, customers)
    version = decided["version"]
    if decided["action"] == "promote":
        path = " -> ".join(f"{share:g}%" for share in shares)
        summary = (
            f"version {version} served a growing share ({path}) of {sent} requests with its "
            "guards held; the worker promoted it to production"
        )
    else:
        summary = f"version {version} was rolled back: {decided['reason']}"
    return Step("canary", summary, {"version": version, "action": decided["action"]})


def _bad_candidate(project: Project, traffic: Traffic, customers: list[str]) -> Step:
    """A broken model forced past its failed gate into canary, and the worker's rollback."""
    from keel.delivery.staging import stage
    from keel.training import train

    config = project.config.training
    if config is None:
        raise KeelError("keel.yaml has no training: section")
    broken = config.model.model_copy(update={"params": {"max_iter": 10, "min_samples_leaf": 10**9}})
    result = train(project, config.model_copy(update={"model": broken}))
    version = result.version.version
    reason = "quickstart: a deliberately broken candidate, forced past its failed gate"
    stage(project, str(version), "canary", force=True, reason=reason)
    decided, _, sent = _roll(project, traffic, customers, bad=True)
    answered = decided.get("answered", 0)
    share = answered / sent if sent else 0.0
    what = "rolled it back" if decided["action"] == "rollback" else f"decided {decided['action']}"
    return Step(
        "bad canary",
        f"version {version} (min_samples_leaf far too large; gate failed) was forced into canary "
        f"by hand; it answered {answered} of {sent} requests ({share:.1%}) before the worker "
        f"{what}: {decided['reason']}; a critical alert was raised",
        {"version": version, "action": decided["action"], "answered": answered, "sent": sent,
         "share": share},
    )  # fmt: skip


def _roll(
    project: Project, traffic: Traffic, customers: list[str], bad: bool = False
) -> tuple[dict[str, Any], list[float], int]:
    """Rounds of traffic and worker cycles until the canary is promoted or rolled back.

    A round's traffic goes on until the canary has answered the step's minimum requests
    (the server keeps each customer on one arm, so a small share of a few hundred
    customers can take several bursts) and the step's minimum time has passed: then one
    worker cycle decides, rather than holding for want of requests. Returns the final
    decision (with the requests the canary answered), the shares passed through, and the
    requests sent.
    """
    from keel.delivery.advance import canary_policy

    policy = canary_policy(project.config.rollout)
    canary = _canary_ref(project)
    need = max(policy.min_requests, policy.min_constant) if bad else policy.min_requests
    share, shares, sent, answered = float(policy.steps[0]), [float(policy.steps[0])], 0, 0
    step_started = time.monotonic()
    bursts = 0
    for _ in range(MAX_ROUNDS):
        at_step = 0
        while at_step < need and bursts < MAX_BURSTS:
            size = min(2500, max(100, math.ceil(1.2 * (need - at_step) * 100 / share)))
            burst = traffic.send(_take(customers, size, sent))
            bursts += 1
            sent += burst.ok
            at_step += burst.versions.get(canary, 0)
            answered += burst.versions.get(canary, 0)
        time.sleep(max(0.0, policy.min_seconds - (time.monotonic() - step_started)))
        _settle(project, traffic)
        decided = _worker_cycle(project)["delivery"].get("canary") or {}
        step_started = time.monotonic()
        if decided.get("action") in ("promote", "rollback"):
            return {**decided, "answered": answered}, shares, sent
        if decided.get("action") == "advance":
            share = float(decided["share"])
            shares.append(share)
    raise KeelError(f"the canary was still undecided after {sent} requests")


def _canary_ref(project: Project) -> str:
    """The running canary as its answers name it (``name@version``)."""
    from keel.training import Registry

    found = Registry(project.store).versions(limit=1, status="canary")
    if not found:
        raise KeelError("there is no canary to roll out")
    return f"{found[0].name}@{found[0].version}"


def _take(customers: list[str], size: int, offset: int) -> list[str]:
    """``size`` customers, continuing round-robin from the ``offset``-th."""
    start = offset % len(customers)
    return [customers[(start + i) % len(customers)] for i in range(size)]
