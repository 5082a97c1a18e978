"""Running the real ``keel`` command in a child process, as users do; a TCP relay that a
test cuts to stand for a network outage."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from urllib.parse import urlparse


def keel(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m keel ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "keel", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def as_unprivileged(command: list[str]) -> list[str]:
    """Prefix a command so it runs without root's power to ignore file permissions."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("setpriv is needed to drop root for permission tests")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def without_module(name: str, folder: Path) -> str:
    """A PYTHONPATH entry under ``folder`` that, put first, makes ``import name`` fail as
    it does where the package is not installed (for a child process)."""
    package = folder / f"without-{name}" / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{name}'\", name='{name}')\n"
    )
    return str(package.parent)


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """``url`` with its search_path set to a fresh schema, dropped after the block."""
    import sqlalchemy as sa

    schema = f"keel_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def registry_row(**overrides: object) -> dict[str, object]:
    """The registry row of a trained model version, for registry, status and deploy tests."""
    row: dict[str, object] = {
        "name": "churn",
        "source": "train",
        "artifact": "0" * 64,
        "size_bytes": 1,
        "config_hash": "h" * 64,
        "data_ref": "file:x.csv",
        "data_rows": 10,
        "data_start": None,
        "data_end": None,
        "metrics": {"roc_auc": 0.8},
        "duration_s": 0.1,
    }
    return row | overrides


class Relay:
    """A TCP relay on a loopback port to a real server, which a test cuts and restores.

    ``cut()`` drops every open connection, as a network failure would; new connections
    are then closed at once, or with ``hold=True`` accepted and never answered (a server
    that stopped responding). ``restore()`` forwards again on the same port.
    """

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.target = (parsed.hostname or "127.0.0.1", parsed.port or 0)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.up = True
        self.hold = False
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by the relay's."""
        parsed = urlparse(url)
        return parsed._replace(
            netloc=parsed.netloc.replace(
                f"{parsed.hostname}:{parsed.port}", f"127.0.0.1:{self.port}"
            )
        ).geturl()

    def cut(self, hold: bool = False) -> None:
        with self._lock:
            self.up, self.hold = False, hold
            sockets, self._open = self._open, []
        for sock in sockets:
            _drop(sock)

    def restore(self) -> None:
        with self._lock:
            self.up = True
            held, self._open = self._open, []  # only connections held while cut
        for sock in held:
            _drop(sock)

    def close(self) -> None:
        self.cut()
        _drop(self.server)

    def __enter__(self) -> Relay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            with self._lock:
                up, hold = self.up, self.hold
                if up or hold:
                    self._open.append(client)  # held ones are dropped by the next close
            if not up and not hold:
                _drop(client)
            elif up:
                self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _drop(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._open.append(upstream)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    _drop(dst)


def _drop(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv() or accept()
    sock.close()


def die_with_parent() -> None:
    """``preexec_fn`` for a service a test starts: SIGKILL it when the test process dies,
    so a test run that is killed leaves no server holding its ports (Linux only)."""
    import ctypes
    import signal

    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
