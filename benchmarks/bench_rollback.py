"""Seconds from `rollback()` until a running `keel serve` answers with the previous model.

Run from the repository root with the project's virtualenv active:

    PYTHONPATH=. python benchmarks/bench_rollback.py [--runs 5]   # uses the test helpers

Target: <= 2 s (replicas poll the registry every `serving.reload_interval`, 1 s).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.delivery.test_deployments import wait_for_model
from tests.helpers import free_port
from tests.serving.helpers import register_model, write_config

from keel.delivery.deployments import rollback
from keel.project import Project
from keel.training import Registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "keel.yaml").write_text("name: churn\n")
        write_config(root, "rate_limit: 1000/second")
        with Project.open(root) as project:
            first = register_model(project, root, seed=0)
            second = register_model(project, root, seed=1)
        port = free_port()
        url = f"http://127.0.0.1:{port}/readyz"
        command = [sys.executable, "-m", "keel", "serve", "--port", str(port), "-p", str(root)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times = []
        try:
            wait_for_model(url, f"churn@{second.version}", 90)
            for run in range(args.runs * 2):
                target = first if run % 2 == 0 else second
                with Project.open(root) as project:
                    started = time.monotonic()
                    if run % 2 == 0:
                        rollback(project, "benchmark", "bench")
                    else:
                        Registry(project.store).transition(
                            second.version, "production", "bench", "forward again"
                        )
                wait_for_model(url, f"churn@{target.version}", 30)
                times.append(time.monotonic() - started)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    print(f"{'switches':>9} {'median s':>9} {'max s':>7} {'target s':>9}")
    print(f"{len(times):>9} {statistics.median(times):>9.2f} {max(times):>7.2f} {2.0:>9.2f}")


if __name__ == "__main__":
    main()
