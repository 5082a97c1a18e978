"""How fast `keel serve` answers feedback, and predictions, while its PostgreSQL store is cut.

One `keel serve` process on a PostgreSQL store reached through a TCP relay on loopback.
For each state of the relay (up; cut with new connections held unanswered, like a hung
server; cut with new connections closed at once, like a stopped one), N concurrent
clients each POST feedback, then predictions: the table gives the status codes and the
median and worst seconds. Target: feedback answers within 5 s in every state (503 with
Retry-After while cut), predictions are unaffected.

    PYTHONPATH=.:src python benchmarks/bench_outage.py [--concurrency 20] [--store URL]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tests.helpers import Relay, free_port, postgres_schema
from tests.serving.helpers import GOOD, auth, create_key, register_model
from tests.serving.test_process import wait_ready

from keel.project import Project


def timed(call: Callable[[], httpx.Response], n: int) -> tuple[str, float, float]:
    """``n`` concurrent calls: their status codes counted, median and worst seconds."""

    def one(_: int) -> tuple[int, float]:
        started = time.monotonic()
        status = call().status_code
        return status, time.monotonic() - started

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    codes = collections.Counter(status for status, _ in results)
    seconds = [s for _, s in results]
    text = " ".join(f"{code}x{count}" for code, count in sorted(codes.items()))
    return text, statistics.median(seconds), max(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--store", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with (
        postgres_schema(args.store) as store,
        tempfile.TemporaryDirectory() as tmp,
        Relay(store) as relay,
    ):
        run(Path(tmp), relay, relay.url(store), args.concurrency)


def run(root: Path, relay: Relay, store: str, n: int) -> None:
    (root / "keel.yaml").write_text(
        f"name: bench\nstore: '{store}'\nserving: {{rate_limit: 100000/second}}\n"
    )
    with Project.open(root) as project:
        register_model(project, root)
        headers = auth(create_key(project, "predict", "feedback"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def feedback() -> httpx.Response:
        body = {"prediction_id": uuid.uuid4().hex, "label": 1}
        return httpx.post(f"{url}/v1/feedback", json=body, headers=headers, timeout=60)

    def predict() -> httpx.Response:
        return httpx.post(f"{url}/v1/predict", json={"instance": GOOD}, headers=headers, timeout=60)

    print(f"{'store':<24}{'route':<10}{'statuses':<16}{'median s':>10}{'worst s':>10}")
    try:
        wait_ready(url, process)
        for state, cut in [("up", None), ("cut, held", True), ("cut, refused", False)]:
            relay.restore()
            if cut is not None:
                relay.cut(hold=cut)
            for route, call in [("feedback", feedback), ("predict", predict)]:
                codes, median, worst = timed(call, n)
                print(f"{state:<24}{route:<10}{codes:<16}{median:>10.3f}{worst:>10.3f}")
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    main()
