"""Where a run came from: who ran it, code version, library versions, config hashes."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["actor", "code_version", "config_hash", "file_hash", "library_versions"]

_LIBRARIES = ("keel-ml", "numpy", "pandas", "scikit-learn", "scipy", "duckdb")


def actor() -> str:
    """``KEEL_ACTOR`` if set, else ``user@host``: who a registry change is recorded for."""
    configured = os.environ.get("KEEL_ACTOR")
    if configured:
        return configured
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def config_hash(section: dict[str, Any]) -> str:
    """sha256 of a config section as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(section, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_hash(path: Path) -> str | None:
    """sha256 of a file's bytes, or None if it does not exist."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def code_version(root: Path) -> dict[str, Any]:
    """The git commit of the project and whether its work tree has changes, if it is a repo."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "dirty": None}
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "dirty": bool(status)}


def library_versions(extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Installed versions of Python and the libraries a model depends on."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in (*_LIBRARIES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
