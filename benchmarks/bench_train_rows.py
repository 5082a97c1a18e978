"""The peak memory of the ``keel train`` process for an XGBoost classifier on a partitioned
source with ``compute.engine: dask``: rows left on the workers, against the same rows
gathered into the process (the path a source with ``key_policy: upsert`` still takes,
and every partitioned source took before).

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_train_rows.py [--rows 2000000] [--files 8] [--workers 2]

Two projects hold the same ``--files`` Parquet files (``--rows`` rows: six numbers, a
text column and a yes/no label) and differ only in ``key_policy``. A cluster of
``--workers`` ``dask worker`` processes (one thread each) is started by process id and
stopped at the end. Each project runs ``keel ingest`` and then ``keel train --json`` as a
child process; its peak resident set (``wait4``'s ``ru_maxrss``) is the figure, beside
that of a process that only imports what ``keel train`` imports, and the table's size in
pandas. No target: the claim is that the first figure does not grow with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).with_name("dask")
NUMBERS = [f"x{i}" for i in range(6)]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}


def _table(start: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(start)
    frame = pd.DataFrame(rng.normal(size=(rows, len(NUMBERS))), columns=NUMBERS)
    frame.insert(0, "event_id", np.arange(start, start + rows))
    frame["plan"] = rng.choice(["basic", "plus", "pro"], rows)
    logit = frame["x0"] - frame["x1"] + np.where(frame["plan"] == "pro", 1.0, 0.0)
    frame["label"] = np.where(rng.uniform(size=rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return frame


def _project(root: Path, files: Path, address: str, policy: str) -> Path:
    root.mkdir(parents=True)
    (root / "data").symlink_to(files)
    source = {"kind": "parquet", "path": "data/", "partitioned": True, "key": "event_id"}
    config = {
        "name": "bench",
        "compute": {"engine": "dask", "address": address},
        "sources": {"events": {**source, "key_policy": policy}},
        "training": {
            "data": "events",
            "target": "label",
            "positive_class": "yes",
            "exclude": ["event_id"],
            "model": {
                "estimator": "xgboost.XGBClassifier",
                "params": {"n_estimators": 20, "max_depth": 4, "n_jobs": 1},
            },
        },
    }
    (root / "keel.yaml").write_text(yaml.safe_dump(config))
    return root


def _keel(root: Path, *args: str) -> tuple[dict[str, Any], float, float]:
    """``keel ARGS --json`` in ``root``: its answer, its peak RSS in MB and its seconds."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "keel", *args, "--json"],
            cwd=root,
            env=_environment(),
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, in KB (Linux)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"keel {' '.join(args)} failed: {err.read().decode()[-2000:]}")
        return json.loads(out.read()), usage.ru_maxrss / 1024, seconds


def _imports_only() -> float:
    code = "import keel.training.pipeline, keel.training.workers, xgboost.dask, distributed"
    child = subprocess.Popen([sys.executable, "-c", code], env=_environment())
    return float(os.wait4(child.pid, 0)[2].ru_maxrss / 1024)


def _rows_on(root: Path, version: int) -> str:
    sys.path.insert(0, str(REPO / "src"))
    from keel.project import Project
    from keel.training import Registry

    with Project.open(root) as project:
        return str(Registry(project.store).record(version)["compute"].get("rows_on", "client"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cluster(workers: int) -> tuple[str, list[subprocess.Popen[bytes]]]:
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = subprocess.DEVNULL
    scheduler = [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    worker = [str(DASK), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
    processes = [
        subprocess.Popen(
            [*scheduler, "--no-dashboard"], stdout=quiet, stderr=quiet, env=_environment()
        )
    ]
    processes += [
        subprocess.Popen(
            [*worker, "--host", "127.0.0.1"], stdout=quiet, stderr=quiet, env=_environment()
        )
        for _ in range(workers)
    ]
    with Client(address, timeout=90, set_as_default=False) as client:
        client.wait_for_workers(workers, timeout=90)
    return address, processes


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    baseline = _imports_only()
    with tempfile.TemporaryDirectory(prefix="keel-bench-train-") as folder:
        files = Path(folder) / "files"
        files.mkdir()
        size = 0
        bounds = np.linspace(0, options.rows, options.files + 1).astype(int)
        for i, (start, stop) in enumerate(pairwise(bounds)):
            part = _table(int(start), int(stop - start))
            size += int(part.memory_usage(deep=True).sum())
            part.to_parquet(files / f"part-{i:03d}.parquet", index=False)
        address, processes = _cluster(options.workers)
        rows = []
        try:
            for policy in ("reject", "upsert"):
                root = _project(Path(folder) / policy, files, address, policy)
                _keel(root, "ingest")
                answer, peak, seconds = _keel(root, "train")
                where = _rows_on(root, answer["version"]["version"])
                rows.append((policy, where, answer["data"]["rows"], peak, seconds))
        finally:
            _stop(processes)
    table = f"the table in pandas: {size / 2**20:,.0f} MB"
    print(f"rows {options.rows:,} in {options.files} files; {table}")
    print(f"a process importing what keel train imports: {baseline:,.0f} MB peak RSS")
    print(f"load average {Path('/proc/loadavg').read_text().split()[0]}")
    print(f"{'key_policy':<11} {'rows_on':<8} {'rows':>10} {'peak RSS MB':>12} {'train s':>8}")
    for policy, where, trained, peak, seconds in rows:
        print(f"{policy:<11} {where:<8} {trained:>10,} {peak:>12,.0f} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
