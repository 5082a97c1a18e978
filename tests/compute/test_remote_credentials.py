"""``compute.credentials: workers`` on a Dask cluster whose workers see nothing of this
machine but the S3 server, and the training-set labels' scratch store.

The project keeps its artifacts on a real SeaweedFS, its keys in keel.yaml's ``storage:``
(as ``${VAR}``). The worker runs in its own mount namespace (as in
``test_remote_s3_cluster``) with no AWS variable but those a test gives it. A scheduler
plugin looks into every task the scheduler sends to a worker (its pickled spec) for
keel.yaml's key and secret. Expected frames come from the same build on the local engine;
which objects are labels is read from the bucket with pyarrow.
"""

from __future__ import annotations

import io
import pickle
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from distributed.diagnostics.plugin import SchedulerPlugin

from keel.data.remote import where_to_read
from keel.project import Project
from keel.store.artifacts import storage_options, without_credentials
from tests.compute.conftest import DASK, _environment
from tests.compute.test_remote_s3_cluster import (
    HIDE,
    ISOLATE,
    STORAGE,
    _can_isolate,
    _isolated_environment,
)
from tests.helpers import die_with_parent, free_port, keel
from tests.s3server import S3Server

ROW = "_keel_row"  # the label rows' column in the label files (keel.features.cluster)


class SecretScan(SchedulerPlugin):
    """Counts the tasks the scheduler sends to workers, and those whose pickled spec holds
    one of ``secrets``."""

    name = "keel-secret-scan"

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [secret.encode() for secret in secrets]
        self.sent: list[str] = []
        self.holding: list[str] = []
        self.scheduler: Any = None

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish != "processing":
            return
        import cloudpickle

        spec = cloudpickle.dumps(self.scheduler.tasks[key].run_spec)
        self.sent.append(str(key))
        if any(secret in spec for secret in self.secrets):
            self.holding.append(str(key))


def _scanned(address: str) -> tuple[list[str], list[str]]:
    from distributed import Client

    def read(dask_scheduler: Any) -> tuple[list[str], list[str]]:
        scan = dask_scheduler.plugins["keel-secret-scan"]
        return list(scan.sent), list(scan.holding)

    with Client(address, timeout=30, set_as_default=False) as client:
        return client.run_on_scheduler(read)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A Dask scheduler with no worker yet; each test starts its own isolated one."""
    if not _can_isolate():
        pytest.skip("unshare cannot make a user and mount namespace here")
    port = free_port()
    process = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_environment(),
        preexec_fn=die_with_parent,
    )
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(20)


@contextmanager
def isolated_worker(address: str, environment: dict[str, str]) -> Iterator[None]:
    """One worker that sees neither this machine's /tmp nor any AWS setting but
    ``environment``; stopped (and gone from the scheduler) after the block."""
    from distributed import Client

    command = [str(DASK), "worker", address, "--nthreads", "1", "--no-nanny"]
    bare = {k: v for k, v in _isolated_environment().items() if not k.startswith("KEEL_TEST_")}
    worker = subprocess.Popen(
        [*ISOLATE, "sh", "-c", HIDE, *command, "--no-dashboard", "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**bare, **environment},
        cwd="/",
        preexec_fn=die_with_parent,
    )
    try:
        with Client(address, timeout=90, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=90)
        yield
    finally:
        worker.terminate()
        worker.wait(20)
        with Client(address, timeout=30, set_as_default=False) as client:
            ends = time.monotonic() + 30
            while client.scheduler_info(n_workers=-1)["workers"] and time.monotonic() < ends:
                time.sleep(0.2)


def _config(root: Path, credentials: str, address: str, bucket: str, url: str) -> None:
    compute = (
        f"compute:\n  engine: dask\n  address: {address}\n  partition_rows: 100\n"
        f"  credentials: {credentials}\n"
    )
    (root / "keel.yaml").write_text(
        (root / "keel.base.yaml").read_text()
        + f"artifacts: s3://{bucket}/keel\n"
        + STORAGE.format(url=url)
        + compute
    )


@pytest.fixture
def keys(s3_server: S3Server, bare_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_TEST_S3_KEY", s3_server.credentials["key"])
    monkeypatch.setenv("KEEL_TEST_S3_SECRET", s3_server.credentials["secret"])


# -- what a task is sent ---------------------------------------------------------------


def test_without_credentials_keeps_what_is_not_a_credential() -> None:
    """Every credential s3fs, botocore or adlfs names goes, at any depth; the endpoint,
    region, retries and addressing style stay."""
    from keel.schema import StorageConfig

    config = StorageConfig.model_validate(
        {
            "s3": {
                "endpoint_url": "http://minio:9000",
                "region": "eu-west-1",
                "key": "AKIAEXAMPLE",
                "secret": "s3cr3t-value",
                "token": "session-token-value",
                "max_attempts": 4,
                "addressing_style": "path",
            }
        }
    )
    options = storage_options(config)
    options["s3"]["client_kwargs"] |= {
        "aws_access_key_id": "AKIANESTED",
        "aws_secret_access_key": "nested-secret",
        "aws_session_token": "nested-token",
    }
    options["abfs"] = {"account_name": "acct", "account_key": "az-key", "sas_token": "az-sas",
                       "connection_string": "az-conn", "client_secret": "az-cs"}  # fmt: skip
    kept = without_credentials(options)
    assert kept == {
        "s3": {
            "endpoint_url": "http://minio:9000",
            "client_kwargs": {"region_name": "eu-west-1"},
            "config_kwargs": {"retries": {"max_attempts": 4}, "s3": {"addressing_style": "path"}},
        },
        "abfs": {"account_name": "acct"},
    }
    assert options["s3"]["secret"] == "s3cr3t-value"  # the store's own options are untouched


@pytest.mark.parametrize("credentials", ["send", "workers"])
def test_a_blob_carries_the_keys_only_when_sent(
    tmp_path: Path, s3_server: S3Server, keys: None, credentials: str
) -> None:
    """The blob ``where_to_read`` makes for keel.yaml's settings, pickled as Dask pickles
    it: with ``workers`` neither the key nor the secret is in it, the endpoint is; with
    ``send`` (the default) both are, as before."""
    import cloudpickle

    root = tmp_path / "project"
    root.mkdir()
    (root / "keel.base.yaml").write_text("name: creds\n")
    _config(root, credentials, "tcp://127.0.0.1:1", "bucket", s3_server.url)
    with Project.open(root) as project:
        assert project.artifacts.storage["s3"]["secret"] == s3_server.credentials["secret"]
        blob = where_to_read(project.artifacts, "ab" * 32)
    for sent in (pickle.dumps(blob), cloudpickle.dumps(blob)):
        assert s3_server.url.encode() in sent
        for secret in s3_server.credentials.values():
            assert (secret.encode() in sent) is (credentials == "send")


# -- on the cluster --------------------------------------------------------------------


@pytest.fixture
def flights(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, keys: None
) -> tuple[Path, Path, pd.DataFrame]:
    """The flights project twice: on the local engine with local artifacts, and with its
    artifacts in S3 for the cluster (the same files, ingested into each)."""
    from tests.features.conftest import ingest as ingest_all
    from tests.features.flights import FEATURES, build_flights

    local = tmp_path / "local"
    _, labels = build_flights(local)
    (local / "features.py").write_text(FEATURES)  # the views the labels have keys for
    remote = tmp_path / "remote"
    remote.mkdir()
    shutil.copytree(local / "data", remote / "data")
    shutil.copy(local / "features.py", remote / "features.py")
    shutil.copy(local / "keel.yaml", remote / "keel.base.yaml")
    (remote / "keel.yaml").write_text(
        (local / "keel.yaml").read_text()
        + f"artifacts: s3://{s3_bucket}/keel\n"
        + STORAGE.format(url=s3_server.url)
    )
    ingest_all(remote)  # in this process, with keel.yaml's keys
    return local, remote, labels


def _objects(fs: Any, bucket: str) -> dict[str, bytes]:
    fs.invalidate_cache()
    return {key: fs.cat(key) for key in fs.find(f"{bucket}/keel")}


def _label_files(objects: dict[str, bytes]) -> list[str]:
    """The objects that are Parquet files with the label rows' column."""
    found = []
    for key, data in objects.items():
        if data[:4] == b"PAR1" and ROW in pq.read_schema(io.BytesIO(data)).names:
            found.append(key)
    return found


def _build(root: Path, labels: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``keel features build-training-set``, as a user runs it."""
    return keel(
        "features", "build-training-set", "--labels", str(labels), "--out", str(out),
        "--timestamp", "dep_time", "--project", str(root), timeout=600,
    )  # fmt: skip


def test_workers_use_their_own_credentials_and_no_label_file_stays(
    flights: tuple[Path, Path, pd.DataFrame],
    s3_server: S3Server,
    s3_bucket: str,
    scheduler: str,
    tmp_path: Path,
) -> None:
    """``credentials: workers``: no task the scheduler sends holds keel.yaml's key or
    secret; the worker, given the read-only identity in its environment, reads every blob
    and the training set equals the local engine's; afterwards the bucket holds no label
    file and no scratch object. Then a worker with no credentials fails the join with one
    sentence naming the worker and what to set, and leaves no label file either."""
    from distributed import Client

    local, remote, labels = flights
    _config(remote, "workers", scheduler, s3_bucket, s3_server.url)
    labels_file = tmp_path / "labels.parquet"
    labels.to_parquet(labels_file, index=False)
    with Project.open(remote) as project:
        options = dict(project.artifacts.storage["s3"])
    fs = s3_server.filesystem()
    before = _objects(fs, s3_bucket)

    reader = s3_server.read_only_credentials
    given = {"AWS_ACCESS_KEY_ID": reader["key"], "AWS_SECRET_ACCESS_KEY": reader["secret"]}
    with isolated_worker(scheduler, given):
        with Client(scheduler, timeout=30, set_as_default=False) as client:
            client.register_plugin(SecretScan(list(s3_server.credentials.values())))
            # the scan sees keel.yaml's secret when a task is sent it
            assert client.submit(len, options, key="probe", pure=False).result(timeout=60) > 0
        done = _build(remote, labels_file, tmp_path / "remote.parquet")
    assert done.returncode == 0, done.stderr
    tasks, holding = _scanned(scheduler)
    assert holding == ["probe"], holding
    assert sum("keel-_join_item-" in key for key in tasks) > 0
    assert sum("keel-snapshot_partition-" in key for key in tasks) > 0

    after = _objects(fs, s3_bucket)
    assert [key for key in after if "/scratch/" in key] == []
    assert _label_files(after) == []
    assert set(after) > set(before)  # the snapshots are stored
    assert _build(local, labels_file, tmp_path / "local.parquet").returncode == 0
    expected = pd.read_parquet(tmp_path / "local.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "remote.parquet"), expected)

    with isolated_worker(scheduler, {}):
        failed = _build(remote, labels_file, tmp_path / "failed.parquet")
    assert failed.returncode == 1, failed.stderr
    said = failed.stderr.strip().splitlines()[-1]  # one line, after the progress
    assert said.startswith(f"error: no credentials to open s3://{s3_bucket}/keel on Dask ")
    assert said.count(". ") == 0
    assert "on Dask worker tcp://127.0.0.1:" in said
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in said
    assert "compute.credentials: send" in said
    assert not (tmp_path / "failed.parquet").exists()
    left = _objects(fs, s3_bucket)
    assert [key for key in left if "/scratch/" in key] == []
    assert _label_files(left) == []
    assert _scanned(scheduler)[1] == ["probe"]
