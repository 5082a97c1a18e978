"""A Dask cluster whose workers see nothing of this machine but the S3 server: partitioned
ingest, ``keel validate --latest`` and feature builds read every file from S3.

The project keeps its artifacts on a real SeaweedFS (``artifacts: s3://...`` with the
endpoint and keys in keel.yaml's ``storage:``). The two workers run in their own mount
namespace with an empty tmpfs over ``/tmp``, where the project, the client's temporary
folders and every pytest folder live, in a fresh working directory, and with no AWS
variable: a task that read a path of the client, or relied on the environment for S3,
would fail. Expected numbers come from pandas and hashlib. The two workers share one
blob cache, in /dev/shm (which they see: only /tmp is hidden).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.data.catalog import Catalog
from keel.data.ingestion import ingest
from keel.data.model import Run
from keel.data.remote import CACHE_ENV, BlobCache
from keel.features import FeatureStore
from keel.project import Project
from keel.store.artifacts import ArtifactStore
from tests.compute.conftest import DASK, Cluster, _environment, assert_materialized_alike
from tests.helpers import die_with_parent, free_port
from tests.s3server import S3Server

ISOLATE = ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
# an empty /tmp of its own, and a working directory in it
HIDE = 'mount -t tmpfs tmpfs /tmp && mkdir /tmp/work && cd /tmp/work && exec "$0" "$@"'

STORAGE = """\
storage:
  s3:
    endpoint_url: {url}
    region: us-east-1
    key: ${{KEEL_TEST_S3_KEY}}
    secret: ${{KEEL_TEST_S3_SECRET}}
    max_attempts: 2
"""

ORDERS = """\
name: s3orders
artifacts: s3://{bucket}/keel
sources:
  orders:
    kind: parquet
    path: s3://{bucket}/orders/
    partitioned: true
    key: order_id
    checks:
      columns:
        order_id: {{type: int}}
        amount: {{type: float, range: [0, 1000]}}
compute:
  engine: dask
  address: {address}
  partition_rows: 50
"""


def _isolated_environment(cache: str | None = None) -> dict[str, str]:
    """The workers' environment: no AWS or fsspec variable, no credentials file, and the
    blob cache folder ``cache`` (default: the worker's own)."""
    kept = {k: v for k, v in _environment().items() if not k.startswith(("AWS_", "FSSPEC_"))}
    return {
        **kept,
        **({CACHE_ENV: cache} if cache is not None else {}),
        "HOME": "/tmp/work",
        "TMPDIR": "/tmp",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _isolated_worker(address: str, cache: str | None = None) -> subprocess.Popen[bytes]:
    command = [str(DASK), "worker", address, "--nthreads", "1", "--no-nanny"]
    return subprocess.Popen(
        [*ISOLATE, "sh", "-c", HIDE, *command, "--no-dashboard", "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_isolated_environment(cache),
        cwd="/",
        preexec_fn=die_with_parent,
    )


def _can_isolate() -> bool:
    probe = subprocess.run(
        [*ISOLATE, "sh", "-c", "mount -t tmpfs tmpfs /tmp"], capture_output=True, check=False
    )
    return shutil.which("unshare") is not None and probe.returncode == 0


@pytest.fixture(scope="module")
def blob_cache() -> Iterator[Path]:
    """The isolated workers' shared blob cache: a folder in /dev/shm."""
    folder = Path(tempfile.mkdtemp(prefix="keel-test-blobs-", dir="/dev/shm"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def isolated_cluster(cache: str | None = None) -> Iterator[Cluster]:
    """A scheduler and two workers that cannot see this machine's /tmp (so neither the
    project nor anything the client writes there) nor any AWS setting; their blob cache
    in ``cache`` (default: each worker's own). Skipped where unshare cannot isolate them,
    failed so under CI."""
    if not _can_isolate():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the isolated workers need unshare with user and mount namespaces")
        pytest.skip("unshare cannot make a user and mount namespace here")
    from distributed import Client

    port = free_port()
    scheduler = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_environment(),
        preexec_fn=die_with_parent,
    )
    cluster = Cluster(f"tcp://127.0.0.1:{port}", scheduler)
    try:
        cluster.workers = [_isolated_worker(cluster.address, cache) for _ in range(2)]
        with Client(cluster.address, timeout=90, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def isolated(blob_cache: Path) -> Iterator[Cluster]:
    """The isolated cluster, its workers sharing one blob cache."""
    with isolated_cluster(str(blob_cache)) as cluster:
        yield cluster


@pytest.fixture
def project(
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    isolated: Cluster,
    bare_environment: None,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A project with artifacts and a partitioned source (three objects of 60, 45 and 75
    orders) in a fresh bucket; S3 reached through keel.yaml only."""
    monkeypatch.setenv("KEEL_TEST_S3_KEY", s3_server.credentials["key"])
    monkeypatch.setenv("KEEL_TEST_S3_SECRET", s3_server.credentials["secret"])
    root = tmp_path / "project"
    root.mkdir()
    config = ORDERS.format(bucket=s3_bucket, address=isolated.address)
    (root / "keel.yaml").write_text(config + STORAGE.format(url=s3_server.url))
    fs = s3_server.filesystem()
    for name, (start, rows) in zip("abc", ((0, 60), (60, 45), (105, 75)), strict=True):
        fs.pipe(f"{s3_bucket}/orders/{name}.parquet", _orders(start, rows).to_parquet(index=False))
    return root


def _orders(start: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(start)
    return pd.DataFrame(
        {"order_id": np.arange(start, start + rows), "amount": rng.uniform(0, 1000, rows).round(2)}
    )


def _objects(fs: Any, bucket: str) -> list[bytes]:
    return [fs.cat(f"{bucket}/orders/{name}.parquet") for name in "abc"]


def _finished(cluster: Cluster, name: str) -> int:
    """How many tasks of the Keel function ``name`` have finished on the cluster (the
    scheduler's transition log; Keel names its tasks ``keel-<function>-...``). The
    cluster's only workers are the isolated ones."""
    from distributed import Client

    def finished(dask_scheduler: Any) -> list[str]:
        log = getattr(dask_scheduler, "transition_log", ())
        return [str(entry[0]) for entry in log if entry[2] == "memory"]

    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        keys = client.run_on_scheduler(finished)
    return sum(f"keel-{name}-" in key for key in keys)


def _ingest(root: Path) -> Run:
    with Project.open(root) as project:
        (run,) = ingest(project, "orders")
    return run


def test_the_workers_see_neither_the_project_nor_aws_settings(
    project: Path, isolated: Cluster
) -> None:
    """The premise of the other tests: from the workers, the project folder does not
    exist, their working directory is not the client's, and no AWS variable is set."""
    from distributed import Client

    def look(path: str) -> tuple[bool, str, list[str]]:
        return os.path.exists(path), os.getcwd(), [k for k in os.environ if k.startswith("AWS_A")]

    with Client(isolated.address, timeout=30, set_as_default=False) as client:
        seen = client.run(look, str(project))
    assert len(seen) == 2
    for exists, cwd, aws in seen.values():
        assert (exists, cwd, aws) == (False, "/tmp/work", [])
    assert project.exists()


def test_partitioned_ingest_publishes_into_s3_and_checks_on_the_workers(
    project: Path, s3_server: S3Server, s3_bucket: str, isolated: Cluster
) -> None:
    """The three objects are checked by tasks on the isolated workers and published as
    blobs under their sha256 (hashlib) in the S3 artifact store, byte for byte; nothing
    of the project's state is a local artifacts folder."""
    before = _finished(isolated, "_check_item")
    run = _ingest(project)
    assert run.status == "published", run.message
    assert run.rows == 60 + 45 + 75 and run.lineage is not None and run.lineage["read"] == 3
    assert _finished(isolated, "_check_item") - before == 3
    fs = s3_server.filesystem()
    for data in _objects(fs, s3_bucket):
        digest = hashlib.sha256(data).hexdigest()
        assert fs.cat(f"{s3_bucket}/keel/sha256/{digest[:2]}/{digest}") == data
    manifest = orjson.loads(fs.cat(f"{s3_bucket}/keel/sha256/{run.lineage['manifest'][:2]}/"
                                   f"{run.lineage['manifest']}"))  # fmt: skip
    assert [p["rows"] for p in manifest["partitions"]] == [60, 45, 75]
    assert not (project / ".keel" / "artifacts").exists()


def test_validate_latest_reads_the_published_partitions_from_s3(
    project: Path, isolated: Cluster
) -> None:
    """``keel validate --latest`` with a tighter range runs on the isolated workers over
    the partitions stored in S3 and counts the rows pandas counts above 900."""
    assert _ingest(project).status == "published"
    before = _finished(isolated, "_check_item")
    config = project / "keel.yaml"
    config.write_text(config.read_text().replace("range: [0, 1000]", "range: [0, 900]"))
    done = CliRunner().invoke(
        app, ["validate", "--source", "orders", "--latest", "--json", "--project", str(project)]
    )
    assert done.exit_code == 1, done.stdout
    ranged = [f for f in json.loads(done.stdout)["findings"] if f["check"] == "amount.range"]
    whole = pd.concat([_orders(0, 60), _orders(60, 45), _orders(105, 75)])
    assert sum(f["violations"] for f in ranged) == int((whole["amount"] > 900).sum()) > 0
    assert _finished(isolated, "_check_item") - before == 3


def test_a_changed_object_is_the_only_one_read_again(
    project: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """After b.parquet is replaced, the next ingest reads one object of three, and the
    new version's rows are the sum pandas counts."""
    assert _ingest(project).status == "published"
    replaced = _orders(500, 30)
    s3_server.filesystem().pipe(f"{s3_bucket}/orders/b.parquet", replaced.to_parquet(index=False))
    second = _ingest(project)
    assert second.status == "published", second.message
    assert (second.lineage or {})["read"] == 1 and second.rows == 60 + len(replaced) + 75


def test_a_local_partitioned_source_is_checked_from_the_s3_artifact_store(
    project: Path, s3_server: S3Server, s3_bucket: str, isolated: Cluster
) -> None:
    """The same three files in the project folder (which the workers cannot see): each is
    put in the S3 artifact store before its check, the checks run on the workers, and
    the version counts the rows pandas counts."""
    folder = project / "data" / "orders"
    folder.mkdir(parents=True)
    frames = [_orders(0, 60), _orders(60, 45), _orders(105, 75)]
    for name, frame in zip("abc", frames, strict=True):
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    config = project / "keel.yaml"
    config.write_text(config.read_text().replace(f"s3://{s3_bucket}/orders/", "data/orders/"))
    before = _finished(isolated, "_check_item")
    run = _ingest(project)
    assert run.status == "published", run.message
    assert run.rows == sum(len(frame) for frame in frames)
    assert _finished(isolated, "_check_item") - before == 3
    fs = s3_server.filesystem()
    for file in sorted(folder.glob("*.parquet")):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        assert fs.cat(f"{s3_bucket}/keel/sha256/{digest[:2]}/{digest}") == file.read_bytes()


def test_an_s3_source_without_credentials_is_one_sentence(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, bare_environment: None
) -> None:
    """No key in keel.yaml and none in the environment: ``keel ingest`` exits 1 with the
    one sentence naming the URL and what to set, and publishes no version."""
    root = tmp_path / "nokeys"
    root.mkdir()
    (root / "keel.yaml").write_text(
        f"name: nokeys\nsources:\n  orders:\n    kind: parquet\n"
        f"    path: s3://{s3_bucket}/orders/\n    partitioned: true\n"
        f"storage:\n  s3:\n    endpoint_url: {s3_server.url}\n    region: us-east-1\n"
        "    max_attempts: 1\n"
    )
    done = CliRunner().invoke(app, ["ingest", "--project", str(root)])
    assert done.exit_code == 1
    said = " ".join(done.output.split())  # the terminal wraps the one line
    assert said.count(". ") == 0 and f"no credentials to open s3://{s3_bucket}/orders/" in said
    assert "storage.s3.key and secret in keel.yaml" in said
    with Project.open(root) as opened:
        (run,) = ingest(opened, "orders")
        assert Catalog(opened.store).latest("orders") is None
    assert run.status == "failed" and run.message.startswith("no credentials to open s3://")


class _Counting(BaseHTTPRequestHandler):
    """Forwards each request to the S3 server and records its method and path."""

    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    seen: list[tuple[str, str]]

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        self.seen.append((self.command, self.path.split("?", 1)[0]))
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            connection.request(self.command, self.path, body, dict(self.headers.items()))
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        length_header = answer.getheader("Content-Length")
        self.send_header(
            "Content-Length", length_header if self.command == "HEAD" else str(len(data))
        )
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def counted(s3_server: S3Server) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A loopback proxy in front of the S3 server: its URL, and the (method, path) of
    every request it has passed on."""
    seen: list[tuple[str, str]] = []
    host, port = s3_server.url.removeprefix("http://").split(":")
    handler = type("Handler", (_Counting,), {"upstream": (host, int(port)), "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _downloads(seen: list[tuple[str, str]], digests: list[str]) -> list[int]:
    """How many GETs of each blob the proxy passed on."""
    return [
        sum(m == "GET" and p.endswith(f"/sha256/{d[:2]}/{d}") for m, p in seen) for d in digests
    ]


@pytest.mark.parametrize("mtime", ["changed", "put back"])
def test_a_changed_cache_entry_is_never_served(
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    counted: tuple[str, list[tuple[str, str]]],
    mtime: str,
) -> None:
    """A blob read twice through a ``BlobCache`` (no cluster) is downloaded once. One byte
    of its entry changed, the size kept and the modification time ``changed`` by the write
    or ``put back`` with ``os.utime`` (which the entry's name alone let through), is never
    served: the next read downloads the blob again and gives the stored bytes."""
    url, seen = counted
    options = {**s3_server.credentials, "endpoint_url": url}
    store = ArtifactStore(f"s3://{s3_bucket}/keel", {"s3": options})
    data = np.random.default_rng(0).bytes(1 << 20)
    digest = store.put_bytes(data)
    cache = BlobCache(tmp_path / "cache", 1 << 30)

    def read() -> bytes:
        with cache.reading() as folder:
            return cache.read(digest, folder / "blob", store.fetch).read_bytes()

    seen.clear()
    assert read() == data and read() == data
    assert _downloads(seen, [digest]) == [1]
    (entry,) = cache.folder.glob(f"{digest}.*")
    before = entry.stat()
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 1
    entry.write_bytes(bytes(changed))
    if mtime == "put back":
        os.utime(entry, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = entry.stat()
    assert after.st_size == before.st_size
    assert (after.st_mtime_ns == before.st_mtime_ns) == (mtime == "put back")
    served = read()
    assert hashlib.sha256(served).hexdigest() == hashlib.sha256(data).hexdigest() == digest
    assert _downloads(seen, [digest]) == [2]
    assert read() == data and _downloads(seen, [digest]) == [2]


def test_validate_after_ingest_reads_the_partitions_from_the_workers_cache(
    project: Path,
    s3_server: S3Server,
    s3_bucket: str,
    blob_cache: Path,
    counted: tuple[str, list[tuple[str, str]]],
) -> None:
    """Ingest's checks fetch each partition's blob from S3 once; ``keel validate --latest``
    then downloads none of them (the proxy in front of S3 passes no GET of a blob) and
    counts the rows pandas counts. A cache entry changed on disk is not used: the next
    validation downloads that blob again, and only that one."""
    url, seen = counted
    config = project / "keel.yaml"
    config.write_text(config.read_text().replace(s3_server.url, url))
    digests = [
        hashlib.sha256(data).hexdigest() for data in _objects(s3_server.filesystem(), s3_bucket)
    ]
    assert _ingest(project).status == "published"
    assert all(count >= 1 for count in _downloads(seen, digests)), seen
    config.write_text(config.read_text().replace("range: [0, 1000]", "range: [0, 900]"))
    whole = pd.concat([_orders(0, 60), _orders(60, 45), _orders(105, 75)])

    def validate() -> None:
        seen.clear()
        done = CliRunner().invoke(
            app, ["validate", "--source", "orders", "--latest", "--json", "--project", str(project)]
        )
        assert done.exit_code == 1, done.stdout
        findings = json.loads(done.stdout)["findings"]
        ranged = [f["violations"] for f in findings if f["check"] == "amount.range"]
        assert sum(ranged) == int((whole["amount"] > 900).sum()) > 0

    validate()
    assert _downloads(seen, digests) == [0, 0, 0]
    (entry,) = blob_cache.glob(f"{digests[1]}.*")
    data = bytearray(entry.read_bytes())
    data[-1] ^= 1
    entry.write_bytes(bytes(data))
    validate()
    assert _downloads(seen, digests) == [0, 1, 0]


# -- features ---------------------------------------------------------------------------


@pytest.fixture
def flights(
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    isolated: Cluster,
    bare_environment: None,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, Path, pd.DataFrame]:
    """The flights project twice: computed locally with local artifacts, and on the
    isolated cluster with its artifacts in S3 (the same files, ingested into each)."""
    from tests.features.conftest import ingest as ingest_all
    from tests.features.flights import build_flights

    monkeypatch.setenv("KEEL_TEST_S3_KEY", s3_server.credentials["key"])
    monkeypatch.setenv("KEEL_TEST_S3_SECRET", s3_server.credentials["secret"])
    local = tmp_path / "local"
    _, labels = build_flights(local)
    remote = tmp_path / "remote"
    remote.mkdir()
    shutil.copytree(local / "data", remote / "data")
    shutil.copy(local / "features.py", remote / "features.py")
    compute = f"compute:\n  engine: dask\n  address: {isolated.address}\n  partition_rows: 100\n"
    (remote / "keel.yaml").write_text(
        (local / "keel.yaml").read_text()
        + f"artifacts: s3://{s3_bucket}/keel\n"
        + STORAGE.format(url=s3_server.url)
        + compute
    )
    ingest_all(remote)
    return local, remote, labels


def test_a_training_set_built_on_the_isolated_cluster_equals_the_local_one(
    flights: tuple[Path, Path, pd.DataFrame], isolated: Cluster
) -> None:
    """Snapshots and the point-in-time join run as tasks on the workers, which read the
    data versions, snapshots and labels from S3; the frame equals the local engine's."""
    local, remote, labels = flights
    before = {name: _finished(isolated, name) for name in ("snapshot_partition", "_join_item")}
    frames = []
    for root in (local, remote):
        with Project.open(root) as opened:
            store = FeatureStore.open(opened)
            views = store.features.select(["weather", "carrier_delays", "fares"])
            store = FeatureStore(opened, views, store.online)
            try:
                frames.append(store.training_set(labels, "dep_time").frame)
            finally:
                store.close()
    for name, count in before.items():
        assert _finished(isolated, name) > count
    pd.testing.assert_frame_equal(frames[1], frames[0])
    assert not (remote / ".keel" / "artifacts").exists()


def test_materializing_on_the_isolated_cluster_writes_the_local_online_rows(
    flights: tuple[Path, Path, pd.DataFrame],
) -> None:
    """``materialize`` on the S3 project (snapshots computed by the workers, their newest
    rows read back from S3 here) writes the entities, times and values the local project
    writes to its own online store."""
    at = pd.Timestamp("2026-03-07 03:00").to_pydatetime()
    assert_materialized_alike(flights[0], flights[1], at)
