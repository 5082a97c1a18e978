"""The peak memory of ``keel train`` for an XGBoost classifier on a partitioned source
with ``compute.engine: dask``: of the ``keel train`` process, rows left on the workers
against the same rows gathered into the process (the path a source with ``key_policy:
upsert`` still takes, and every partitioned source took before), and of the workers.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_train_rows.py [--rows 2000000] [--files 8] [--workers 2]
                                          [--policy reject] [--policy upsert]

Two projects hold the same ``--files`` Parquet files (``--rows`` rows: six numbers, a
text column and a yes/no label) and differ only in ``key_policy`` (``--policy`` runs one
of them; both by default). A cluster of ``--workers`` ``dask worker`` processes (one
thread each, no nanny: the process is the worker) is started by process id and stopped
at the end. Each project runs ``keel ingest`` and then ``keel train --json`` as a child
process. The figures:

- the ``keel train`` process's peak resident set (``wait4``'s ``ru_maxrss``), beside that
  of a process that only imports what ``keel train`` imports, and the table's size in
  pandas;
- the workers' resident sets, sampled with psutil every 0.2 s while ``keel train`` runs:
  each one's before the run and at its peak, and the peak of their sum;
- where that memory is: at each sample the scheduler's tasks in memory, their bytes
  (``nbytes`` as the workers report them) summed by key group (``key_split``: the
  function or collection that made them); the groups held at the sample with the most
  bytes are printed, so a table held twice shows as two groups of its size.

No target: the claims are that the process's figure does not grow with the table, and
that the workers hold about one copy of it (the training matrix and the test rows).
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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


def _held_by_group(dask_scheduler: Any) -> dict[str, int]:
    """The bytes of the tasks in memory on the workers, by key group (on the scheduler)."""
    from dask.utils import key_split

    groups: dict[str, int] = {}
    for task in dask_scheduler.tasks.values():
        if task.state == "memory":
            group = key_split(task.key)
            groups[group] = groups.get(group, 0) + task.get_nbytes()
    return groups


@dataclass
class Samples:
    """The workers' RSS (MB, by pid) and the held bytes by key group, over a run."""

    before: dict[int, float] = field(default_factory=dict)
    peak: dict[int, float] = field(default_factory=dict)
    peak_sum: float = 0.0
    held_peak: dict[str, int] = field(default_factory=dict)
    count: int = 0
    trace: list[dict[str, Any]] = field(default_factory=list)


def _rss(pids: list[int]) -> dict[int, float]:
    import psutil

    return {pid: psutil.Process(pid).memory_info().rss / 2**20 for pid in pids}


@contextmanager
def _sampling(address: str, pids: list[int], every: float = 0.2) -> Iterator[Samples]:
    """Every ``every`` s, until the block ends: the workers' RSS and the scheduler's
    held bytes by key group."""
    from distributed import Client

    samples = Samples(before=_rss(pids))
    samples.peak = dict(samples.before)
    done = threading.Event()

    def sample(client: Any) -> None:
        while not done.wait(every):
            found = _rss(pids)
            held = client.run_on_scheduler(_held_by_group)
            samples.count += 1
            samples.trace.append({"t": time.monotonic(), "rss": found, "held": held})
            samples.peak = {pid: max(samples.peak[pid], found[pid]) for pid in pids}
            samples.peak_sum = max(samples.peak_sum, sum(found.values()))
            if sum(held.values()) > sum(samples.held_peak.values()):
                samples.held_peak = held

    with Client(address, timeout=90, set_as_default=False) as client:
        thread = threading.Thread(target=sample, args=(client,), daemon=True)
        thread.start()
        try:
            yield samples
        finally:
            done.set()
            thread.join(30)


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
    parser.add_argument("--policy", action="append", choices=["reject", "upsert"])
    parser.add_argument("--trace", type=Path, help="write every sample here, a JSON line each")
    options = parser.parse_args()
    policies = options.policy or ["reject", "upsert"]
    load = Path("/proc/loadavg").read_text().split()[0]
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
        pids = [process.pid for process in processes[1:]]
        rows = []
        try:
            for policy in policies:
                root = _project(Path(folder) / policy, files, address, policy)
                _keel(root, "ingest")
                with _sampling(address, pids) as samples:
                    answer, peak, seconds = _keel(root, "train")
                where = _rows_on(root, answer["version"]["version"])
                rows.append((policy, where, answer["data"]["rows"], peak, seconds, samples))
        finally:
            _stop(processes)
    table = f"the table in pandas: {size / 2**20:,.0f} MB"
    print(f"rows {options.rows:,} in {options.files} files; {table}")
    print(f"a process importing what keel train imports: {baseline:,.0f} MB peak RSS")
    print(
        f"load average {load} at the start, {Path('/proc/loadavg').read_text().split()[0]} "
        "at the end"
    )
    print(
        f"{'key_policy':<11} {'rows_on':<8} {'rows':>10} {'peak RSS MB':>12} {'train s':>8}"
        f"  {'workers before -> peak MB':<28} {'sum peak MB':>11}"
    )
    for policy, where, trained, peak, seconds, samples in rows:
        each = ", ".join(
            f"{samples.before[pid]:,.0f}->{samples.peak[pid]:,.0f}" for pid in samples.peak
        )
        print(
            f"{policy:<11} {where:<8} {trained:>10,} {peak:>12,.0f} {seconds:>8.1f}"
            f"  {each:<28} {samples.peak_sum:>11,.0f}"
        )
    if options.trace is not None:
        with options.trace.open("w") as out:
            for policy, _, _, _, _, samples in rows:
                for line in samples.trace:
                    out.write(json.dumps({"policy": policy, **line}) + "\n")
    for policy, _, _, _, _, samples in rows:
        held = sorted(samples.held_peak.items(), key=lambda item: -item[1])
        total = sum(samples.held_peak.values()) / 2**20
        print(f"{policy}: {samples.count} samples; most held on the workers {total:,.0f} MB:")
        for group, size in held:
            if size >= 2**20:
                print(f"    {size / 2**20:>8,.1f} MB  {group}")


if __name__ == "__main__":
    main()
