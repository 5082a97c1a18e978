"""Seconds from `keel rollback` until all three replicas of a production topology answer
with the previous model.

Run from the repository root with the project's virtualenv active, PostgreSQL and Redis
up (the test suite's servers, or KEEL_TEST_POSTGRES_URL / KEEL_TEST_REDIS_URL):

    PYTHONPATH=.:src python benchmarks/bench_topology.py [--runs 7] [--idle] [--s3]

The topology is the one the topology drills use (``tests/topology/harness.py``): three
`keel serve` replicas and a `keel worker` sharing PostgreSQL (a fresh schema, dropped
afterwards), Redis for online features and a shared artifact folder (with ``--s3``: a
bucket on a SeaweedFS server started for the run, as the drills use), with load through a
health-checking balancer unless ``--idle``. Each run is a real `keel rollback --reason
...` (the rollback of the previous one, so the two versions take turns), after a random
pause of up to a second so that runs land at different points of the replicas' polling.
Every replica is asked every 20 ms which version answers. Times run from the rollback's
event in the registry (what the replicas can see) and, for the operator's view, from the
start of the `keel rollback` process (its Python start-up included).

Target: the slowest replica answers with the previous version <= 1 s (median) and <= 2 s
(max) after the rollback's event.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.helpers import postgres_schema
from tests.s3server import S3Server
from tests.topology.harness import SECRET_VAR, STORAGE, Topology, traffic, wait_for_version

from keel.delivery.deployments import deployments
from keel.project import Project

TARGET_MEDIAN_S = 1.0
TARGET_MAX_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--idle", action="store_true", help="no load while rolling back")
    parser.add_argument("--s3", action="store_true", help="artifacts and log on an S3 server")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        store = stack.enter_context(postgres_schema(POSTGRES_URL))
        root = tmp / "project"
        root.mkdir()
        options = _on_s3(stack, tmp) if args.s3 else {"artifacts": str(tmp / "artifacts")}
        topology = Topology(root, store, REDIS_URL, **options)
        try:
            topology.create(tmp)
            topology.start()
            with _load(topology, not args.idle):
                runs = _runs(topology, args.runs)
        finally:
            topology.clear_features()
            topology.stop()
    _report(runs, "under load" if not args.idle else "idle", "S3" if args.s3 else "a folder")


def _on_s3(stack: contextlib.ExitStack, tmp: Path) -> dict[str, Any]:
    """A SeaweedFS server for the run and the topology's settings for a bucket on it."""
    server = stack.enter_context(S3Server(tmp / "s3"))
    secret = server.credentials["secret"]
    os.environ[SECRET_VAR] = secret  # this process opens the project too
    storage = STORAGE.format(url=server.url, key=server.credentials["key"], secret=SECRET_VAR)
    artifacts = f"s3://{server.create_bucket()}/keel"
    return {"artifacts": artifacts, "storage": storage, "env": {SECRET_VAR: secret}}


@contextlib.contextmanager
def _load(topology: Topology, on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    with traffic(topology):
        yield


def _runs(topology: Topology, runs: int) -> list[tuple[list[float], float]]:
    """Per run: seconds from the event to each replica's first answer, and the command's
    own head start (event time minus the command's start)."""
    previous, current = topology.versions
    for replica in topology.replicas:
        if wait_for_version(replica, topology.key, current, 60) is None:
            sys.exit(f"{replica.name} never answered with {current}")
    pauses = random.Random(0)
    results = []
    for run in range(runs):
        time.sleep(pauses.uniform(0, 1))
        target = previous if run % 2 == 0 else current
        results.append(_rollback(topology, target))
    return results


def _rollback(topology: Topology, target: str) -> tuple[list[float], float]:
    replicas = topology.replicas
    with ThreadPoolExecutor(len(replicas)) as pool:
        key = topology.key
        answered = [pool.submit(wait_for_version, r, key, target, 120) for r in replicas]
        started = time.time()
        done = topology.keel("rollback", "--reason", "benchmark")
        if done.returncode != 0:
            sys.exit(done.stderr)
        with Project.open(topology.root) as project:
            at = deployments(project, 1)[0].at
        seen = [future.result() for future in answered]
    if None in seen:
        sys.exit(f"a replica did not answer with {target} within 120 s")
    return [when - at for when in seen if when is not None], at - started


def _report(runs: list[tuple[list[float], float]], load: str, artifacts: str) -> None:
    """Median and max per replica, for the slowest replica, and from the command's start."""
    print(
        f"{len(runs)} rollbacks, 3 replicas on PostgreSQL + Redis, artifacts on {artifacts}, {load}"
    )
    print(f"{'replica':>22} {'median s':>9} {'max s':>7} {'target s':>12}")
    columns = [[times[i] for times, _ in runs] for i in range(len(runs[0][0]))]
    rows = [(f"replica{i + 1}", column, "") for i, column in enumerate(columns)]
    slowest = [max(times) for times, _ in runs]
    rows.append(("all three", slowest, f"{TARGET_MEDIAN_S:g} / {TARGET_MAX_S:g}"))
    rows.append(
        (
            "all three from command",
            [s + head for s, (_, head) in zip(slowest, runs, strict=True)],
            "",
        )
    )
    for name, times, target in rows:
        print(f"{name:>22} {statistics.median(times):>9.2f} {max(times):>7.2f} {target:>12}")


if __name__ == "__main__":
    main()
