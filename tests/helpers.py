"""Running the real ``keel`` command in a child process, as users do."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path


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
