"""Throughput and latency of Keel's server against a minimal FastAPI app, same model.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_serving.py [--seconds 5] [--rounds 3] [--concurrency 16] [--classes 2 5]
        [--log-roll worker ship]

The model is a LogisticRegression on 30 numeric features (two classes, or `--classes N`:
then the log keeps every class's probability; `--classes 2 5` measures both in one run,
side by side). For each model these servers run, each a single uvicorn process pinned to
CPU 0:

- baseline: FastAPI, a pydantic model of the 30 fields, ``predict_proba`` on the row;
- keel: ``keel serve`` on a project whose production model is that LogisticRegression,
  registered through the training registry, with API keys, validation from the recorded
  schema, per-key rate limiting (a limit high enough not to refuse), the prediction log
  (each answer in the spool file before its response leaves; fsync'd only with
  ``serving.log_fsync``) and Prometheus metrics all on; no response cache;
  with ``--log-roll A B``, one such server per ``serving.log_roll`` value, side by side
  (``worker``: the server only seals its spool; ``ship``: it also copies each sealed spool
  file to the artifact store, here the project's local folder; ``server``: it rolls and
  uploads Parquet segments itself); no worker runs, as on a replica whose worker is on
  another machine;
- keel, log off: the same with ``serving.log_predictions: false``.

The load generator runs in its own process pinned to CPU 1: asyncio, ``--concurrency``
keep-alive connections on loopback, each sending single-row requests (1,000 distinct
rows, cycled) back to back. It writes HTTP/1.1 by hand because an httpx client saturates
its core below what either server can answer, which would measure the client. Each round
measures every server in turn (every other round in the reverse order); the table shows
medians over rounds.

Throughput follows the share of CPU 0 a server gets, so on a machine shared with other
work it swings from one measurement to the next. The table also shows the CPU time each
server process spent per answered request (user + system, from ``/proc``; Linux only),
which other work on the machine moves far less: log on / off is given both ways, as the
ratio of throughputs and as the ratio of CPU per request (off / on: the throughput ratio
of a server that has its core to itself). Work a server does in the background (rolling
or shipping a sealed spool every ``log_seal_every``) can fall between its measurements,
so CPU per request is also given over the whole run: all the CPU each server spent from
before the first round to after the last, over all the requests it answered.

uvicorn parses HTTP with httptools and runs uvloop when they are installed (``uvicorn[standard]``),
else with the pure-Python h11 and asyncio, which cost more per request than all of Keel's
gateway; the table names the stack. To measure with them without installing them into the
environment: ``pip install --target DIR httptools uvloop`` and run with ``PYTHONPATH=DIR``.

Targets: keel / baseline throughput >= 1.5x; keel p99 <= 25 ms; log on / off >= 0.95x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import create_model

FEATURES = [f"f{i:02d}" for i in range(30)]
HERE = Path(__file__).resolve()
REPO = HERE.parents[1]


# -- the model and the projects -----------------------------------------------------------


def make_data(rows: int, seed: int = 0, classes: int = 2) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (rows, len(FEATURES))).round(4)
    weights = rng.normal(0, 1, len(FEATURES))
    if classes > 2:  # ordered classes: the noisy linear score cut at its quantiles
        noisy = X @ weights + rng.logistic(0, 1, rows)
        cuts = np.quantile(noisy, np.linspace(0, 1, classes + 1)[1:-1])
        return X, np.digitize(noisy, cuts)
    y = (rng.random(rows) < 1 / (1 + np.exp(-(X @ weights)))).astype(int)
    return X, y


def build_model(folder: Path, classes: int = 2) -> Path:
    from sklearn.linear_model import LogisticRegression

    X, y = make_data(5000, classes=classes)
    model = LogisticRegression(max_iter=1000).fit(X, y)  # fitted on an array: no names
    path = folder / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    return path


def build_project(
    folder: Path, model_path: Path, log: bool, classes: int = 2, roll: str | None = None
) -> tuple[Path, str]:
    """A project whose production model is the benchmark model; returns (root, key)."""
    import warnings

    import pandas as pd

    from keel.project import Project
    from keel.serving import KeyStore
    from keel.training import deploy, import_model

    folder.mkdir()
    serving = (
        "serving:\n  rate_limit: 10000000/minute\n  timeout_ms: 1000\n"
        f"  log_predictions: {'true' if log else 'false'}\n"
        + (f"  log_roll: {roll}\n" if roll else "")
        + os.environ.get("KEEL_BENCH_SERVING", "")
    )
    (folder / "keel.yaml").write_text(f"name: bench\n{serving}")
    X, y = make_data(1000, seed=1, classes=classes)
    sample = pd.DataFrame(X, columns=FEATURES).assign(label=y)
    sample.to_csv(folder / "sample.csv", index=False)
    with Project.open(folder) as project, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scoring a name-less model on the sample frame
        version = import_model(project, model_path, folder / "sample.csv", "label", None)
        deploy(project, str(version.version), force=True, reason="benchmark")
        key, _ = KeyStore(project.store).create("bench", ["predict"], "bench")
    return folder, key


# -- servers ------------------------------------------------------------------------------

Instance: Any = create_model("Instance", **{name: (float, ...) for name in FEATURES})


def baseline_app(model_path: Path) -> Any:
    """The minimal FastAPI app: pydantic validation and the scikit-learn predict."""
    from fastapi import FastAPI

    model = pickle.loads(model_path.read_bytes())
    app = FastAPI()

    @app.post("/predict")
    async def predict(instance: Instance) -> dict[str, Any]:
        row = np.array([[getattr(instance, name) for name in FEATURES]])
        proba = model.predict_proba(row)[0]
        return {"label": int(proba.argmax()), "probability": float(proba.max())}

    return app


def serve_baseline(model_path: Path, port: int) -> None:
    import uvicorn

    uvicorn.run(
        baseline_app(model_path), host="127.0.0.1", port=port, access_log=False, log_level="warning"
    )


def pinned(cpu: int) -> Any:
    def apply() -> None:
        if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {cpu})

    return apply


def start(command: list[str], cpu: int, log: Path) -> subprocess.Popen[bytes]:
    """Start a server pinned to ``cpu``; its output goes to ``log`` (a pipe could fill up)."""
    path = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    with log.open("wb") as out:
        return subprocess.Popen(
            command, env=env, preexec_fn=pinned(cpu), stdout=out, stderr=subprocess.STDOUT
        )


def wait_ready(port: int, path: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    sys.exit(f"the server on port {port} did not become ready:\n{log.read_text()[-3000:]}")


# -- the load generator -------------------------------------------------------------------


def requests_for(path: str, key: str | None, wrap: bool, count: int = 1000) -> list[bytes]:
    X, _ = make_data(count, seed=1)  # the rows of the sample: inside the training range
    out = []
    for row in X:
        instance = dict(zip(FEATURES, row.tolist(), strict=True))
        body = json.dumps({"instance": instance} if wrap else instance).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + (f"Authorization: Bearer {key}\r\n" if key else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


class Connection(asyncio.Protocol):
    """One keep-alive connection sending requests back to back (an asyncio Protocol:
    far less client CPU per request than streams, so the client is not what is measured)."""

    def __init__(self, requests: list[bytes], offset: int, warm_until: float, stop_at: float):
        self.requests, self.i = requests, offset
        self.warm_until, self.stop_at = warm_until, stop_at
        self.latencies: list[float] = []
        self.errors = 0
        self.answered = 0  # warm-up included: the server's CPU time covers those too
        self.buffer = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.send()

    def send(self) -> None:
        self.sent_at = time.perf_counter()
        self.transport.write(self.requests[self.i % len(self.requests)])
        self.i += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        now = time.perf_counter()
        self.answered += 1
        if self.sent_at >= self.warm_until:
            self.latencies.append(now - self.sent_at)
            self.errors += head[9:12] != b"200"
        if now < self.stop_at:
            self.send()
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def drive(
    port: int, requests: list[bytes], concurrency: int, seconds: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    warm_until = time.perf_counter() + 1.0
    stop_at = warm_until + seconds
    connections = []
    for i in range(concurrency):
        _, protocol = await loop.create_connection(
            lambda i=i: Connection(requests, i * 61, warm_until, stop_at), "127.0.0.1", port
        )
        connections.append(protocol)
    await asyncio.gather(*(c.done for c in connections))
    latencies = sorted(latency for c in connections for latency in c.latencies)
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "errors": sum(c.errors for c in connections),
        "answered": sum(c.answered for c in connections),
    }


def measure(
    port: int, requests_file: Path, concurrency: int, seconds: float, pid: int | None = None
) -> dict[str, Any]:
    """Run the load generator in its own process, pinned to CPU 1; with the server's
    ``pid``, add its CPU time per answered request (None where ``/proc`` cannot say)."""
    command = [
        sys.executable, str(HERE), "--role", "client", "--port", str(port),
        "--requests", str(requests_file), "--concurrency", str(concurrency),
        "--seconds", str(seconds),
    ]  # fmt: skip
    before = cpu_seconds(pid)
    out = subprocess.run(command, preexec_fn=pinned(1), capture_output=True, check=True)
    after = cpu_seconds(pid)
    result: dict[str, Any] = json.loads(out.stdout)
    spent = None if before is None or after is None else after - before
    result["cpu_us"] = 1e6 * spent / result["answered"] if spent is not None else None
    return result


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (every thread), from ``/proc/<pid>/stat``."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the run ------------------------------------------------------------------------------

Server = tuple[int, Path, subprocess.Popen[bytes]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--role", default="main", choices=["main", "baseline", "client"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--requests", type=Path)
    parser.add_argument(
        "--classes", type=int, nargs="+", default=[2], help="Classes of the model (one or more)."
    )
    parser.add_argument(
        "--log-roll",
        nargs="+",
        default=[],
        choices=["worker", "ship", "server"],
        help="Measure a logging server per serving.log_roll value (default: keel.yaml's).",
    )
    args = parser.parse_args()
    if args.role == "baseline":
        serve_baseline(args.model, args.port)
    elif args.role == "client":
        requests = pickle.loads(args.requests.read_bytes())
        result = asyncio.run(drive(args.port, requests, args.concurrency, args.seconds))
        sys.stdout.write(json.dumps(result))
    else:
        run(args.seconds, args.rounds, args.concurrency, args.classes, args.log_roll)


def run(
    seconds: float, rounds: int, concurrency: int, classes: list[int], rolls: list[str]
) -> None:
    sys.path.insert(0, str(REPO / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        servers: dict[tuple[int, str], Server] = {}
        try:
            port = 18700 + os.getpid() % 500
            for index, count in enumerate(classes):
                model_folder = folder / f"{count}-classes"
                model_folder.mkdir()
                model_path = build_model(model_folder, count)
                stride = 2 + max(1, len(rolls))
                started = setup_servers(
                    model_folder, model_path, port + stride * index, count, rolls
                )
                servers |= {(count, name): server for name, server in started.items()}
            results = measure_rounds(servers, rounds, concurrency, seconds)
        finally:
            for _, _, process in servers.values():
                process.terminate()
                process.wait(60)
        for count in classes:
            mine = {name: runs for (c, name), runs in results.items() if c == count}
            report(mine, rounds, concurrency, seconds, count)


def measure_rounds(
    servers: dict[tuple[int, str], Server], rounds: int, concurrency: int, seconds: float
) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """Every server once a round, every other round in the reverse order, so a load that
    grows or fades during the run does not favour the servers measured first."""
    results: dict[tuple[int, str], list[dict[str, Any]]] = {name: [] for name in servers}
    order = list(servers.items())
    started = {name: cpu_seconds(process.pid) for name, (_, _, process) in order}
    for round_ in range(rounds):
        for name, (port, requests_file, process) in order[:: -1 if round_ % 2 else 1]:
            results[name].append(measure(port, requests_file, concurrency, seconds, process.pid))
    time.sleep(2.0)  # background work of the last round (a spool rolled, shipped) ends
    for name, (_, _, process) in order:
        ended, began = cpu_seconds(process.pid), started[name]
        answered = sum(run["answered"] for run in results[name])
        whole = None if ended is None or began is None else 1e6 * (ended - began) / answered
        for run in results[name]:
            run["cpu_us_all"] = whole
    return results


def setup_servers(
    folder: Path, model_path: Path, port: int, classes: int = 2, rolls: list[str] | None = None
) -> dict[str, Server]:
    """Start the servers on ports from ``port`` on: the baseline, keel with the log (one
    per ``serving.log_roll`` value in ``rolls``), keel with the log off; stops them on
    failure."""
    servers: dict[str, Server] = {}
    try:
        baseline = start(
            [sys.executable, str(HERE), "--role", "baseline", "--model", str(model_path),
             "--port", str(port)], cpu=0, log=folder / "baseline.log",
        )  # fmt: skip
        servers["baseline"] = (port, write_requests(folder, "baseline", "/predict", None), baseline)
        logged = (
            [(f"keel, {roll}", True, roll) for roll in rolls] if rolls else [("keel", True, None)]
        )
        kinds = [*logged, ("keel, log off", False, None)]
        for offset, (name, log, roll) in enumerate(kinds, start=1):
            root, key = build_project(folder / f"project{offset}", model_path, log, classes, roll)
            command = [sys.executable, "-m", "keel", "serve", "--project", str(root),
                       "--port", str(port + offset)]  # fmt: skip
            requests_file = write_requests(folder, f"keel{offset}", "/v1/predict", key)
            output = folder / f"keel{offset}.log"
            servers[name] = (port + offset, requests_file, start(command, cpu=0, log=output))
        for index, (name, (server_port, _, process)) in enumerate(servers.items()):
            ready = "/openapi.json" if name == "baseline" else "/readyz"
            output = folder / (f"keel{index}.log" if index else "baseline.log")
            wait_ready(server_port, ready, process, output)
    except BaseException:
        for _, _, process in servers.values():
            process.terminate()
        raise
    return servers


def write_requests(folder: Path, name: str, path: str, key: str | None) -> Path:
    target = folder / f"{name}.requests"
    target.write_bytes(pickle.dumps(requests_for(path, key, wrap=key is not None)))
    return target


def http_stack() -> str:
    """What uvicorn picks in the server processes: httptools and uvloop when installed."""
    import importlib.util

    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn + {parser} + {loop}"


def report(
    results: dict[str, list[dict[str, Any]]],
    rounds: int,
    concurrency: int,
    seconds: float,
    classes: int = 2,
) -> None:
    def median(name: str, field: str) -> float:
        values = [run[field] for run in results[name] if run.get(field) is not None]
        return statistics.median(values) if values else float("nan")

    print(f"single-row requests, concurrency {concurrency}, {seconds:g} s x {rounds} rounds")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"model: LogisticRegression, {classes} classes")
    print(f"HTTP stack (both servers): {http_stack()}")
    header = ("server", "req/s", "p50 ms", "p99 ms", "errors", "vs baseline", "CPU us/req")
    print(
        f"{header[0]:<16}" + "".join(f"{h:>10}" for h in header[1:5])
        + f"{header[5]:>13}{header[6]:>12}"
    )  # fmt: skip
    base = median("baseline", "rps")
    for name in results:
        rps = median(name, "rps")
        errors = sum(run["errors"] for run in results[name])
        print(
            f"{name:<16}{rps:>10.0f}{median(name, 'p50_ms'):>10.2f}{median(name, 'p99_ms'):>10.2f}"
            f"{errors:>9}{rps / base:>12.2f}x{median(name, 'cpu_us'):>12.0f}"
        )
    for name in results:
        if name in ("baseline", "keel, log off"):
            continue
        logged = median(name, "rps") / median("keel, log off", "rps")
        cpu = median("keel, log off", "cpu_us") / median(name, "cpu_us")
        whole = median("keel, log off", "cpu_us_all") / median(name, "cpu_us_all")
        which = "" if name == "keel" else f" ({name.removeprefix('keel, ')})"
        print(
            f"prediction log{which} on / off: {logged:.2f}x req/s; "
            f"{cpu:.2f}x by CPU per request (off / on); {whole:.2f}x by CPU per request "
            "over the whole run"
        )
    print(
        "CPU us/req over the whole run (background work between rounds included): "
        + "; ".join(f"{name} {median(name, 'cpu_us_all'):.0f}" for name in results)
    )
    print("per round req/s: " + "; ".join(
        f"{name} " + ", ".join(f"{run['rps']:.0f}" for run in runs)
        for name, runs in results.items()
    ))  # fmt: skip


if __name__ == "__main__":
    main()
