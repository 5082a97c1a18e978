"""Wall time of `keel --help` and `keel config check`: median of fresh processes.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_cli.py [--runs 10]

Targets: `keel --help` <= 0.3 s, `keel config check` <= 0.5 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall_times(command: list[str], cwd: Path, runs: int) -> list[float]:
    """Seconds for each of ``runs`` fresh processes (after one warm-up run)."""
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    keel = shutil.which("keel") or sys.exit("keel is not on PATH: activate the virtualenv")
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        subprocess.run(
            [keel, "init", str(project), "--rows", "200"], check=True, capture_output=True
        )
        cases = {
            "python -c pass": ([sys.executable, "-c", "pass"], None),
            "keel --help": ([keel, "--help"], 0.3),
            "keel config check": ([keel, "config", "check"], 0.5),
        }
        print(f"{'command':<20} {'median s':>9} {'min s':>7} {'max s':>7} {'target s':>9}")
        for name, (command, target) in cases.items():
            times = wall_times(command, project, args.runs)
            limit = f"{target:.2f}" if target else "-"
            print(
                f"{name:<20} {statistics.median(times):>9.3f} {min(times):>7.3f} "
                f"{max(times):>7.3f} {limit:>9}"
            )


if __name__ == "__main__":
    main()
