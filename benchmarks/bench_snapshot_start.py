"""Seconds from starting `keel serve` to its first prediction, with the store up or not.

A project on a PostgreSQL store reached through a TCP relay on loopback, with a production
version, a key, and the snapshot a first server left in .keel/snapshot. Then, for each
state of the relay (up; cut with new connections closed at once, like a stopped database;
cut with new connections held unanswered, like a hung one), `keel serve` is started
``--runs`` times as a fresh process and a client asks for a prediction until one is
answered 200: the table gives the median and worst seconds from the process's start to
that answer, the CPU seconds the process had used by then (what the wall time comes down
to on a quiet machine, plus the wait for an unreachable store), and what /readyz said
then. Target: <= 5 s with the store unreachable.

    PYTHONPATH=.:src python benchmarks/bench_snapshot_start.py [--runs 3] [--store URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tests.helpers import Relay, free_port, postgres_schema
from tests.serving.helpers import GOOD, auth, client, create_key, register_model

from keel.project import STORE_ENV, Project
from keel.serving import create_app

_DEADLINE_S = 120.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_prediction(root: Path, key: str) -> tuple[float, float, str]:
    """Start `keel serve`: seconds until its first 200 prediction, CPU seconds used by
    then, and what /readyz says about being degraded."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != STORE_ENV}
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.monotonic() - started < _DEADLINE_S:
            if process.poll() is not None:
                raise SystemExit(f"keel serve exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                answer = httpx.post(
                    f"{url}/v1/predict", json={"instance": GOOD}, headers=auth(key), timeout=5
                )
            except httpx.TransportError:
                time.sleep(0.02)
                continue
            if answer.status_code == 200:
                took, cpu = time.monotonic() - started, cpu_seconds(process.pid)
                degraded = httpx.get(f"{url}/readyz", timeout=5).json()["degraded"]
                return took, cpu, degraded or "-"
            time.sleep(0.02)
        raise SystemExit("no prediction within the deadline")
    finally:
        process.terminate()
        process.wait(30)
        process.stderr.close()  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with (
        postgres_schema(args.store) as store,
        tempfile.TemporaryDirectory() as tmp,
        Relay(store) as relay,
    ):
        run(Path(tmp), relay, relay.url(store), args.runs)


def run(root: Path, relay: Relay, store: str, runs: int) -> None:
    (root / "keel.yaml").write_text(
        f"name: bench\nstore: '{store}'\nserving: {{rate_limit: 100000/second}}\n"
    )
    with Project.open(root) as project:
        register_model(project, root)
        key = create_key(project)
        asyncio.run(_leave_snapshot(project))
    states = {
        "up": relay.restore,
        "cut, refused": relay.cut,
        "cut, held": lambda: relay.cut(hold=True),
    }
    print(
        f"{'store':<14} {'runs':>4} {'median s':>9} {'worst s':>8} {'cpu s':>6}  /readyz degraded"
    )
    for name, arrange in states.items():
        arrange()
        results = [first_prediction(root, key) for _ in range(runs)]
        seconds = [took for took, _, _ in results]
        cpu = statistics.median(used for _, used, _ in results)
        print(
            f"{name:<14} {runs:>4} {statistics.median(seconds):>9.2f} {max(seconds):>8.2f}"
            f" {cpu:>6.2f}  {results[-1][2]}"
        )
    print(f"load average while measured: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


async def _leave_snapshot(project: Project) -> None:
    async with client(create_app(project)):
        pass


if __name__ == "__main__":
    main()
