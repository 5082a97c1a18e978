"""What ``keel.Client.predict`` costs on top of a raw httpx call, on loopback.

Run from the repository root with the project's virtualenv active:

    PYTHONPATH=.:src python benchmarks/bench_client.py [--calls 2000] [--rounds 5]

One ``keel serve`` (a LogisticRegression on three features, the prediction log on) runs in
its own process. Two callers send the same single-row predict, one at a time, over one
keep-alive connection each:

- raw httpx: ``httpx.Client.post(url, json={"instance": row}, headers=...)`` then
  ``response.json()``;
- keel.Client: ``client.predict(row)``, which also builds the typed ``Prediction`` and
  runs the status checks and the retry loop (no retry happens).

Each round runs ``--calls`` of each, interleaved call by call so that drifts of the machine
hit both alike; the table shows the median and p90 per call over all rounds and the median
of the per-round differences of the medians. On a busy machine the server's own time
varies far more than the difference, so a second table runs both callers against an
``httpx.MockTransport`` that returns a recorded answer: no network and no server, only
what each caller itself costs.

Target: keel.Client overhead <= 0.3 ms per call at the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tests.helpers import free_port
from tests.serving.helpers import GOOD, create_key, register_model, write_config
from tests.serving.test_process import wait_ready

import keel
from keel.project import Project

REPO = Path(__file__).resolve().parents[1]


def start_server(folder: Path) -> tuple[str, str, subprocess.Popen[bytes]]:
    """keel serve on a fresh project with a registered model; its URL, a key, the process."""
    root = folder / "project"
    root.mkdir()
    write_config(root, "rate_limit: null\ntimeout_ms: 5000")
    with Project.open(root) as project:
        register_model(project, folder)
        key = create_key(project, "predict")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process)
    return url, key, process


def measure(url: str, key: str, calls: int) -> tuple[list[float], list[float]]:
    """Per-call seconds for the raw httpx call and for keel.Client.predict, interleaved."""
    headers = {"Authorization": f"Bearer {key}"}
    raw_times: list[float] = []
    keel_times: list[float] = []
    with httpx.Client(base_url=url) as raw, keel.Client(url, key) as client:
        for _ in range(50):  # warm both connections and the server
            raw.post("/v1/predict", json={"instance": GOOD}, headers=headers).json()
            client.predict(GOOD)
        for _ in range(calls):
            started = time.perf_counter()
            raw.post("/v1/predict", json={"instance": GOOD}, headers=headers).json()
            middle = time.perf_counter()
            client.predict(GOOD)
            keel_times.append(time.perf_counter() - middle)
            raw_times.append(middle - started)
    return raw_times, keel_times


def measure_offline(url: str, key: str, calls: int) -> tuple[list[float], list[float]]:
    """The same two callers against a transport that returns a recorded answer."""
    headers = {"Authorization": f"Bearer {key}"}
    recorded = httpx.post(f"{url}/v1/predict", json={"instance": GOOD}, headers=headers)
    body, kept = recorded.content, {"content-type": "application/json"}

    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200, content=body, headers=kept)

    transport = httpx.MockTransport(answer)
    raw_times: list[float] = []
    keel_times: list[float] = []
    with (
        httpx.Client(base_url=url, transport=transport) as raw,
        keel.Client(url, key, transport=transport) as client,
    ):
        for _ in range(calls):
            started = time.perf_counter()
            raw.post("/v1/predict", json={"instance": GOOD}, headers=headers).json()
            middle = time.perf_counter()
            client.predict(GOOD)
            keel_times.append(time.perf_counter() - middle)
            raw_times.append(middle - started)
    return raw_times, keel_times


def report(rounds: list[tuple[list[float], list[float]]], title: str) -> None:
    raw_all = [t for raw, _ in rounds for t in raw]
    keel_all = [t for _, kept in rounds for t in kept]
    overheads = [statistics.median(k) - statistics.median(r) for r, k in rounds]
    print(title)
    print(f"{'caller':<14}{'median ms':>12}{'p90 ms':>10}")
    for name, times in [("raw httpx", raw_all), ("keel.Client", keel_all)]:
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{name:<14}{statistics.median(times) * 1000:>12.3f}{p90 * 1000:>10.3f}")
    print(
        f"keel.Client overhead (median of per-round differences): "
        f"{statistics.median(overheads) * 1000:.3f} ms (target <= 0.3 ms); per round: "
        + ", ".join(f"{o * 1000:.3f}" for o in overheads)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url, key, process = start_server(Path(folder))
        try:
            rounds = [measure(url, key, args.calls) for _ in range(args.rounds)]
            offline = [measure_offline(url, key, args.calls) for _ in range(args.rounds)]
        finally:
            process.kill()
            process.wait(30)
    shape = f"single-row predict, {args.calls} calls x {args.rounds} rounds"
    report(rounds, f"{shape}, one keel serve on loopback")
    print()
    report(offline, f"{shape}, recorded answer (httpx.MockTransport): the callers alone")


if __name__ == "__main__":
    main()
