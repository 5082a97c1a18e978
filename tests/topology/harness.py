"""A production topology on loopback: real processes, a load balancer and its load.

``Topology`` is one project served by three ``keel serve`` replicas on one "machine" (a
project folder they share, with its spool) and monitored by one ``keel worker`` on a
second "machine": a folder of its own with the same keel.yaml, no access to the
replicas' spool, sharing only the stores. Its metadata store is PostgreSQL and its
online features are in Redis, each reached through a ``Relay`` the test can cut; its
artifacts and log segments are in one shared location (a folder, or any URL the artifact
store takes, such as ``s3://bucket/prefix`` with keel.yaml's ``storage:`` section).

``Balancer`` stands for a load balancer with health checks: it probes every replica's
``/readyz`` and sends requests round-robin only to replicas that passed their last probe.
Like nginx (``proxy_next_upstream error``) or HAProxy (``retries`` with ``redispatch``),
it sends a request to the next replica when no connection could be opened (the request
never left), and never resends one that was sent: a POST may have been acted on.

``Load`` is traffic through the balancer from a few threads, recording the id of every
acknowledged prediction, and every failure by its kind, so drills assert with counts.

``ShippedLog`` reads the log's rows straight from the bucket with pyarrow, without Keel:
what drills count the shipped log with.
"""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from keel.project import Project
from keel.training import deploy
from tests.helpers import Relay, free_port, keel
from tests.serving.helpers import auth, create_key, import_fitted

CUSTOMERS = 50  # entities with online features in Redis; requests cycle through them

FEATURES = """\
from keel.features import FeatureView

profile = FeatureView(
    name="profile", source="customers", entity="customer_id", timestamp="updated_at",
    features=("spend",), ttl="3650d",
)
"""

CONFIG = """\
name: {name}
store: '{store}'
artifacts: '{artifacts}'
sources:
  customers: {{kind: csv, path: data/customers.csv}}
features: {{module: features.py, online: '{online}'}}
serving:
  rate_limit: 100000/second
  timeout_ms: 5000
  fallback: [rule, none]
  rule: '1 if tenure < 12 else 0'
  reload_interval: 200ms
  log_seal_every: 2s
  log_roll: ship  # each replica ships its sealed spools: no other machine sees its spool
  drain: {drain}
monitoring: {{reference: reference.csv}}
{storage}"""

REFERENCE = "tenure,visits,spend\n" + "".join(
    f"{1 + i % 70},3,{40.0 + i % 25}\n" for i in range(350)
)  # what the load sends: monitoring's reference, so the worker's cycle checks the window

SECRET_VAR = "KEEL_TOPOLOGY_S3_SECRET"  # the only S3 setting from the environment

# keel.yaml's storage: section for a bucket on the test S3 server (format: url, key, secret)
STORAGE = """\
storage:
  s3:
    endpoint_url: {url}
    region: us-east-1
    key: {key}
    secret: ${{{secret}}}
    max_attempts: 2
    connect_timeout: 2s
    read_timeout: 10s
"""

DRAIN = "2s"  # longer than the balancer takes to see two failed probes, so it stops first


class Replica:
    """One `keel serve` process of the project at ``root`` on a fixed loopback port, so it
    comes back at the same address after a restart (the balancer's list does not change)."""

    def __init__(self, root: Path, name: str, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.name = name
        self.env = process_env(env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        command = [sys.executable, "-m", "keel", "serve", "--port", str(self.port)]
        output = (self.root / f"{self.name}-{self.starts}.log").open("wb")
        with output:
            self.process = subprocess.Popen(
                [*command, "-p", str(self.root)],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, seconds: float = 60) -> int:
        """Reap the process (SIGKILL after ``seconds``); its exit code."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def stop(self) -> int | None:
        """SIGTERM, then reap: the graceful stop a process manager does."""
        if self.process is None or self.process.poll() is not None:
            return None
        self.signal(signal.SIGTERM)
        return self.wait()

    def readiness(self, timeout: float = 1.0) -> dict[str, Any] | None:
        """What ``/readyz`` answers, or None when nothing answers."""
        try:
            response = httpx.get(f"{self.url}/readyz", timeout=timeout)
            body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        return body

    def wait_ready(self, seconds: float = 120) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if (self.readiness() or {}).get("ready"):
                return True
            if self.process is not None and self.process.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def output(self) -> str:
        """Everything this replica's processes wrote, for a failure message."""
        logs = sorted(self.root.glob(f"{self.name}-*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


class Balancer:
    """Round-robin over the replicas in service: a replica leaves after ``misses``
    consecutive failed ``/readyz`` probes (not 200, or no answer within a second) and
    comes back after one good probe, as health checks in a load balancer do."""

    def __init__(self, replicas: list[Replica], probe_every: float = 0.2, misses: int = 2):
        self.replicas = replicas
        self.probe_every = probe_every
        self.misses = misses
        self.healthy = {replica.name: False for replica in replicas}
        self._failed = {replica.name: misses for replica in replicas}
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, daemon=True)

    def __enter__(self) -> Balancer:
        self._probe_once()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def order(self) -> list[Replica]:
        """The healthy replicas, starting at the next one's turn."""
        up = [replica for replica in self.replicas if self.healthy[replica.name]]
        if not up:
            return []
        start = next(self._turn) % len(up)
        return up[start:] + up[:start]

    def _probe(self) -> None:
        while not self._stop.wait(self.probe_every):
            self._probe_once()

    def _probe_once(self) -> None:
        for replica in self.replicas:
            ready = bool((replica.readiness(timeout=1.0) or {}).get("ready"))
            self._failed[replica.name] = 0 if ready else self._failed[replica.name] + 1
            self.healthy[replica.name] = self._failed[replica.name] < self.misses


@dataclass
class Tally:
    """What the load saw: acknowledged prediction ids and every other outcome, counted."""

    acknowledged: dict[str, str] = field(default_factory=dict)  # prediction id -> replica
    answers: Counter[str] = field(default_factory=Counter)  # "model", "fallback rule", ...
    failures: Counter[str] = field(default_factory=Counter)  # "503", "ReadError", "no replica"
    retried: int = 0  # connection refused: sent to the next replica, as a balancer does
    features_missing: int = 0

    @property
    def requests(self) -> int:
        return sum(self.answers.values()) + sum(self.failures.values())


class Load:
    """``threads`` clients sending one prediction each every ``pause`` seconds through the
    balancer until stopped."""

    def __init__(self, balancer: Balancer, key: str, threads: int = 3, pause: float = 0.03):
        self.balancer = balancer
        self.headers = auth(key)
        self.pause = pause
        self.phase = "start"  # what the drill is doing now; outcomes are counted per phase
        self.tallies: dict[str, Tally] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._serial = itertools.count()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def tally(self, phase: str) -> Tally:
        """The outcomes of requests sent and answered in ``phase``; a request that straddled
        a change of phase counts under ``"edge"``."""
        with self._lock:
            return self.tallies.setdefault(phase, Tally())

    @property
    def acknowledged(self) -> set[str]:
        with self._lock:
            return {i for tally in self.tallies.values() for i in tally.acknowledged}

    def wait_for(self, requests: int, seconds: float = 60) -> None:
        """Until ``requests`` more requests were made in this phase (or ``seconds`` passed)."""
        tally = self.tally(self.phase)
        target = tally.requests + requests
        deadline = time.monotonic() + seconds
        while tally.requests < target and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        clients: dict[str, httpx.Client] = {}
        try:
            while not self._stop.is_set():
                self._one(clients)
                time.sleep(self.pause)
        finally:
            for client in clients.values():
                client.close()

    def _one(self, clients: dict[str, httpx.Client]) -> None:
        request = body(next(self._serial))
        phase = self.phase
        for replica in self.balancer.order():
            client = clients.get(replica.name)
            if client is None:
                client = clients[replica.name] = httpx.Client(base_url=replica.url, timeout=30)
            try:
                response = client.post("/v1/predict", json=request, headers=self.headers)
            except httpx.ConnectError:
                with self._lock:
                    self._tally(phase).retried += 1
                continue  # nothing was sent: the next replica may take it
            except httpx.HTTPError as error:
                self._failed(phase, type(error).__name__)
                return
            self._answered(phase, replica, response)
            return
        self._failed(phase, "no replica")

    def _tally(self, sent_in: str) -> Tally:
        return self.tally(sent_in if sent_in == self.phase else "edge")

    def _failed(self, phase: str, kind: str) -> None:
        with self._lock:
            self._tally(phase).failures[kind] += 1

    def _answered(self, phase: str, replica: Replica, response: httpx.Response) -> None:
        if response.status_code != 200:
            self._failed(phase, str(response.status_code))
            return
        answer = response.json()["predictions"][0]
        kind = "model" if answer["fallback"] is None else f"fallback {answer['fallback']}"
        with self._lock:
            tally = self._tally(phase)
            tally.acknowledged[answer["prediction_id"]] = replica.name
            tally.answers[kind] += 1
            tally.features_missing += bool(answer.get("features_missing"))


class Topology:
    """Three replicas and a worker of one project on PostgreSQL, Redis and shared artifacts.

    ``postgres`` and ``redis`` are the servers' URLs; the project reaches each through a
    relay (``pg_relay``, ``redis_relay``) that a drill cuts. ``artifacts`` is where models
    and log segments go: a folder path or an artifact-store URL (``s3://bucket/prefix``),
    with ``storage`` a keel.yaml ``storage:`` section (YAML text) and ``env`` for every
    process (e.g. the variables that section reads). No ``AWS_*`` or ``FSSPEC_*``
    variable of the test process reaches them. The worker's project folder is
    ``worker_root`` (beside ``root``), its keel.yaml and features.py copied from ``root``.
    """

    def __init__(
        self,
        root: Path,
        postgres: str,
        redis: str,
        artifacts: str,
        replicas: int = 3,
        env: dict[str, str] | None = None,
        storage: str = "",
    ) -> None:
        self.root = root
        self.worker_root = root.parent / f"{root.name}-worker"
        self.pg_relay = Relay(postgres)
        self.redis_relay = Relay(redis)
        self.name = f"topology-{uuid.uuid4().hex[:12]}"  # its own namespace in Redis
        self.artifacts = artifacts
        self.env = env or {}
        self.storage = storage
        self.replicas = [Replica(root, f"replica{i + 1}", self.env) for i in range(replicas)]
        self.worker: subprocess.Popen[bytes] | None = None
        self.key = ""
        self.versions: list[str] = []  # labels of v1 and v2, oldest first
        self._postgres, self._redis = postgres, redis

    def create(self, tmp: Path) -> None:
        """Write the project, register v1 then v2 (production), a key, and the features."""
        (self.root / "keel.yaml").write_text(
            CONFIG.format(
                name=self.name,
                store=self.pg_relay.url(self._postgres),
                artifacts=self.artifacts,
                online=self.redis_relay.url(self._redis),
                drain=DRAIN,
                storage=self.storage,
            )
        )
        (self.root / "features.py").write_text(FEATURES)
        (self.root / "reference.csv").write_text(REFERENCE)
        self.worker_root.mkdir(exist_ok=True)
        for name in ("keel.yaml", "features.py", "reference.csv"):
            (self.worker_root / name).write_bytes((self.root / name).read_bytes())
        with Project.open(self.root) as project:
            for seed in (0, 1):
                version = import_fitted(project, tmp, seed)
                deploy(project, str(version.version), force=True, reason="topology")
                self.versions.append(version.label)
            self.key = create_key(project)
            self._write_features(project)

    def _write_features(self, project: Project) -> None:
        from datetime import datetime

        from keel.features import FeatureStore

        store = FeatureStore.open(project)
        try:
            rows = [
                (f"c{i}", datetime(2026, 1, 1), {"spend": 40.0 + i % 25}) for i in range(CUSTOMERS)
            ]
            store.online.write("profile", rows)
        finally:
            store.close()

    def clear_features(self) -> None:
        from keel.features import FeatureStore

        with Project.open(self.root) as project:
            store = FeatureStore.open(project)
            try:
                store.online.clear("profile")
            finally:
                store.close()

    def start(self) -> None:
        """Every replica, ready, and the worker (in its own folder, as its working dir)."""
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            assert replica.wait_ready(), replica.output()
        command = [sys.executable, "-m", "keel", "worker", "--every", "1s", "-p", "."]
        output = (self.worker_root / "worker.log").open("wb")
        with output:
            self.worker = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=process_env(self.env),
                cwd=self.worker_root,
            )

    def stop(self) -> None:
        for replica in self.replicas:
            if _running(replica.process):
                replica.signal(signal.SIGTERM)
        for replica in self.replicas:
            if replica.process is not None:
                replica.wait()
        if _running(self.worker):
            assert self.worker is not None
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        self.pg_relay.close()
        self.redis_relay.close()

    def keel(self, *args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
        """A `keel` command on this project (in ``root``: the worker's folder, say)."""
        return keel(*args, "-p", str(root or self.root), env=process_env(self.env))

    def logged_ids(self) -> set[str]:
        """The prediction ids in the shipped log, read as ``keel worker`` reads it: the
        segments committed in the store's manifest, through ``PredictionLog``."""
        from keel.monitoring.log import PredictionLog

        with Project.open(self.root) as project:
            log = PredictionLog.for_project(project)
            frame = log.read()
        return set(frame["prediction_id"]) if len(frame) else set()

    def missing_from_log(self, ids: set[str], seconds: float = 90) -> set[str]:
        """The ids of ``ids`` not yet in the shipped log once the worker has rolled what
        the replicas sealed (polled until none is missing or ``seconds`` passed)."""
        deadline = time.monotonic() + seconds
        missing = set(ids)
        while missing and time.monotonic() < deadline:
            time.sleep(1)
            missing = ids - self.logged_ids()
        return missing


SPOOLS = "spools"  # where replicas ship raw spool files (and spools-damaged/ beside it)


class ShippedLog:
    """The prediction log's rows as stored in the bucket, read with pyarrow: every Parquet
    object under ``prefix`` with a ``prediction_id`` column (models and their samples are
    other objects there, and are skipped; so are the raw spool files the replicas ship
    under ``spools/``, which the worker deletes once rolled). Objects
    are content-addressed, so each is read once and kept."""

    COLUMNS = ("prediction_id", "time", "model_version")

    def __init__(self, fs: Any, prefix: str) -> None:
        self.fs = fs
        self.prefix = prefix
        self._read: dict[str, Any] = {}  # key -> its rows (a DataFrame), or None

    def frame(self) -> Any:
        """Every row of every segment now in the bucket (a pandas DataFrame)."""
        import pandas as pd

        self.fs.invalidate_cache()  # s3fs checks each key against its cached listings
        for key in self.fs.find(self.prefix, refresh=True):
            if key in self._read or f"{self.prefix}/{SPOOLS}" in key:
                continue  # read already, or a raw spool file on its way to the worker
            self._read[key] = self._rows(self.fs.cat(key))
        frames = [frame for frame in self._read.values() if frame is not None]
        if not frames:
            return pd.DataFrame(columns=list(self.COLUMNS))
        return pd.concat(frames, ignore_index=True)

    def _rows(self, data: bytes) -> Any:
        import pyarrow.parquet as pq

        if data[:4] != b"PAR1":
            return None
        parquet = pq.ParquetFile(io.BytesIO(data))
        if "prediction_id" not in parquet.schema_arrow.names:
            return None  # a data version or a model's sample, not a log segment
        return parquet.read(columns=list(self.COLUMNS)).to_pandas()

    @property
    def segments(self) -> int:
        """How many segments (Parquet objects) the last ``frame()`` found."""
        return sum(frame is not None for frame in self._read.values())

    def missing(self, ids: set[str], seconds: float = 90) -> set[str]:
        """The ids of ``ids`` not in the bucket's segments (polled until none is missing
        or ``seconds`` passed)."""
        deadline = time.monotonic() + seconds
        missing = ids - set(self.frame()["prediction_id"])
        while missing and time.monotonic() < deadline:
            time.sleep(1)
            missing = ids - set(self.frame()["prediction_id"])
        return missing


SKEW = "+5m"  # a replica's clock this far ahead of everyone else's
FAKETIME_LIBRARY = "/usr/lib/*/faketime/libfaketimeMT.so.1"  # Debian's libfaketime


def skewed_clock(offset: str = SKEW) -> dict[str, str]:
    """The environment that runs a process with its wall clock moved by ``offset``
    (libfaketime preloaded into the process itself, not the ``faketime`` wrapper, which
    would stand between the test and the process's signals); its monotonic clock is left
    alone, as a skewed machine's is. Fails (skips off CI) naming the package when
    libfaketime is not installed."""
    import pytest

    found = sorted(glob.glob(FAKETIME_LIBRARY))
    if not found:
        message = "libfaketime is not installed: apt-get install -y faketime"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return {"LD_PRELOAD": found[0], "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def process_env(extra: dict[str, str] | None) -> dict[str, str]:
    """This process's environment without its object-store settings, plus ``extra``."""
    own = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FSSPEC_"))}
    return {**own, **(extra or {})}


def body(serial: int) -> dict[str, Any]:
    """A prediction request for a customer whose features are in the online store."""
    customer = serial % CUSTOMERS
    return {"instance": {"customer_id": f"c{customer}", "tenure": 1 + serial % 70, "visits": 3}}


def answered_by(replica: Replica, key: str) -> str | None:
    """The model version that answered one prediction on ``replica``, or None."""
    try:
        response = httpx.post(f"{replica.url}/v1/predict", json=body(0), headers=auth(key))
        return str(response.json()["predictions"][0]["model_version"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def wait_for_version(replica: Replica, key: str, version: str, seconds: float) -> float | None:
    """Predict until ``version`` answers: the UNIX time it first did, or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answered_by(replica, key) == version:
            return time.time()
        time.sleep(0.02)
    return None


def _running(process: subprocess.Popen[bytes] | None) -> bool:
    return process is not None and process.poll() is None


@contextlib.contextmanager
def traffic(topology: Topology, threads: int = 3) -> Iterator[tuple[Balancer, Load]]:
    """A balancer over the topology's replicas and load through it, around a block."""
    with Balancer(topology.replicas) as balancer, Load(balancer, topology.key, threads) as load:
        yield balancer, load
