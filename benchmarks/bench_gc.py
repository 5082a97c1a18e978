"""Garbage-collector pauses in a `keel serve` process under load, with and without the
start-up freeze.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_gc.py [--seconds 8] [--rounds 4] [--concurrency 4]

Two `keel serve` processes serve the same model as ``bench_serving.py`` (pinned to CPU 0,
the load generator to CPU 1): one as shipped, which freezes the objects it loaded at start
(``gc.freeze`` once the model is warm), one with the freeze switched off. Each process
times every collection through ``gc.callbacks`` from the moment both are ready until the
load ends ("full GCs", "their ms"), then at exit times one more full collection ("one
full ms": what any full collection costs the event loop at that heap size), beside
throughput and p99 from the same rounds (rounds alternate between the two).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

import bench_serving as serving  # noqa: E402

# Run as the server: time collections once the go-file exists, write them at exit.
_SERVER = """
import atexit, gc, json, os, sys, time
out, freeze = os.environ["BENCH_GC_OUT"], os.environ["BENCH_GC_FREEZE"] == "1"
pauses, started = [], [0.0]

def timed(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    elif os.path.exists(out + ".go"):
        pauses.append((info["generation"], 1000 * (time.perf_counter() - started[0])))

def write():
    gc.callbacks.remove(timed)
    tracked, begun = len(gc.get_objects()), time.perf_counter()
    gc.collect()
    one = 1000 * (time.perf_counter() - begun)
    with open(out, "w") as f:
        json.dump({"pauses": pauses, "frozen": gc.get_freeze_count(), "tracked": tracked,
                   "one_full_ms": one}, f)

gc.callbacks.append(timed)
atexit.register(write)
import keel.serving.lifecycle
if not freeze:
    keel.serving.lifecycle._freeze_startup_objects = lambda: None
from keel.cli.main import run
sys.argv = ["keel", *sys.argv[1:]]
run()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = serving.build_model(folder)
        servers: dict[str, dict[str, Any]] = {}
        try:
            port = 19300 + os.getpid() % 500
            for offset, name in enumerate(["freeze (as shipped)", "no freeze"]):
                servers[name] = start(folder, model, port + offset, freeze=offset == 0)
            for server in servers.values():
                serving.wait_ready(server["port"], "/readyz", server["process"], server["log"])
            for server in servers.values():
                Path(str(server["out"]) + ".go").touch()
            for _ in range(args.rounds):
                for server in servers.values():
                    result = serving.measure(
                        server["port"], server["requests"], args.concurrency, args.seconds
                    )
                    server["rounds"].append(result)
        finally:
            for server in servers.values():
                Path(str(server["out"]) + ".go").unlink(missing_ok=True)  # shutdown not timed
                server["process"].send_signal(signal.SIGTERM)
                server["process"].wait(60)
        report(servers, args)


def start(folder: Path, model: Path, port: int, freeze: bool) -> dict[str, Any]:
    name = "frozen" if freeze else "plain"
    root, key = serving.build_project(folder / name, model, log=True)
    out = folder / f"{name}.json"
    env = {
        **os.environ,
        "BENCH_GC_OUT": str(out),
        "BENCH_GC_FREEZE": "1" if freeze else "0",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(serving.REPO / "src"), os.environ.get("PYTHONPATH")])
        ),
    }
    log = folder / f"{name}.log"
    command = [sys.executable, "-c", _SERVER, "serve", "--project", str(root), "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, preexec_fn=serving.pinned(0), stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    requests = serving.write_requests(folder, name, "/v1/predict", key)
    return {"port": port, "process": process, "log": log, "out": out, "requests": requests,
            "rounds": []}  # fmt: skip


def report(servers: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"{args.rounds} rounds of {args.seconds:g} s, {args.concurrency} connections\n")
    columns = ["req/s", "p99 ms", "full GCs", "their ms", "young max ms", "one full ms",
               "tracked", "frozen"]  # fmt: skip
    print(f"{'server':<20}" + "".join(f"{column:>13}" for column in columns))
    for name, server in servers.items():
        timing = json.loads(Path(server["out"]).read_text())
        full = sorted(ms for generation, ms in timing["pauses"] if generation == 2)
        young = [ms for generation, ms in timing["pauses"] if generation < 2]
        rounds = server["rounds"]
        cells = [
            f"{statistics.median(r['rps'] for r in rounds):.0f}",
            f"{statistics.median(r['p99_ms'] for r in rounds):.1f}",
            str(len(full)),
            ", ".join(f"{ms:.0f}" for ms in full) or "-",
            f"{max(young, default=0):.1f}",
            f"{timing['one_full_ms']:.1f}",
            str(timing["tracked"]),
            str(timing["frozen"]),
        ]
        print(f"{name:<20}" + "".join(f"{cell:>13}" for cell in cells))


if __name__ == "__main__":
    main()
