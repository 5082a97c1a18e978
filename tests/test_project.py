"""Finding and opening a project, and where its stores live."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.errors import ConfigError, ProjectError
from keel.project import STORE_ENV, Project, find_root

from .helpers import as_unprivileged


def test_open_finds_keel_yaml_above_the_cwd(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands run from a subfolder find the project above it."""
    nested = project_dir / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert Project.open().root == project_dir


def test_open_accepts_the_file_itself(project_dir: Path) -> None:
    """--project may name keel.yaml as well as its folder."""
    assert Project.open(project_dir / "keel.yaml").root == project_dir


def test_no_project_says_how_to_make_one(tmp_path: Path) -> None:
    """Outside any project the error suggests keel init."""
    with pytest.raises(ProjectError, match="keel init"):
        find_root(tmp_path)


def test_missing_project_folder_is_named(tmp_path: Path) -> None:
    """A --project that does not exist is reported as such."""
    with pytest.raises(ProjectError, match="does not exist"):
        Project.open(tmp_path / "nope")


def test_invalid_config_surfaces_on_open(project_dir: Path) -> None:
    """Opening a project validates its keel.yaml."""
    (project_dir / "keel.yaml").write_text("nmae: x\n")
    with pytest.raises(ConfigError, match="did you mean 'name'"):
        Project.open(project_dir)


def test_default_store_is_sqlite_in_the_state_folder(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing configured the store is .keel/keel.db."""
    monkeypatch.delenv(STORE_ENV, raising=False)
    with Project.open(project_dir) as project:
        assert project.store_url == f"sqlite:///{project_dir / '.keel' / 'keel.db'}"
        assert project.store.dialect == "sqlite"
        assert (project_dir / ".keel" / "keel.db").exists()


def test_relative_sqlite_url_is_relative_to_the_project(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """store: sqlite:///state/k.db means the project's state/ folder, whatever the cwd."""
    monkeypatch.delenv(STORE_ENV, raising=False)
    (project_dir / "keel.yaml").write_text("store: sqlite:///state/k.db\n")
    monkeypatch.chdir(tmp_path)
    assert Project.open(project_dir).store_url == f"sqlite:///{project_dir / 'state' / 'k.db'}"


def test_env_var_overrides_the_config(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KEEL_STORE_URL wins over store: so deployments can point elsewhere."""
    (project_dir / "keel.yaml").write_text("store: sqlite:///a.db\n")
    monkeypatch.setenv(STORE_ENV, "sqlite:////tmp/elsewhere.db")
    assert Project.open(project_dir).store_url == "sqlite:////tmp/elsewhere.db"


@pytest.mark.postgres
def test_postgres_store_from_env(
    project_dir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A postgresql:// URL opens the production backend."""
    monkeypatch.setenv(STORE_ENV, postgres_url)
    with Project.open(project_dir) as project:
        assert project.store.dialect == "postgresql"


def test_artifacts_default_to_the_state_folder(project_dir: Path) -> None:
    """Artifacts live in .keel/artifacts unless configured."""
    with Project.open(project_dir) as project:
        digest = project.artifacts.put_bytes(b"blob")
        assert (project_dir / ".keel" / "artifacts" / "sha256" / digest[:2] / digest).exists()


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temporary folder an unprivileged user can enter (pytest's tmp_path is private)."""
    folder = Path(tempfile.mkdtemp(prefix="keel-ro-"))
    folder.chmod(0o755)
    yield folder
    for path in folder.rglob("*"):
        path.chmod(0o755)
    subprocess.run(["rm", "-rf", str(folder)], check=True)


_OPEN_STORE = """
import sys
from keel.errors import KeelError
from keel.project import Project
try:
    Project.open(sys.argv[1]).store
except KeelError as error:
    print(type(error).__name__, error)
"""


def _open_store_unprivileged(root: Path) -> subprocess.CompletedProcess[str]:
    """Open the project's store in a process without root's power over permissions."""
    return subprocess.run(
        as_unprivileged([sys.executable, "-c", _OPEN_STORE, str(root)]),
        capture_output=True,
        text=True,
        env={**os.environ, "KEEL_STORE_URL": ""},
        timeout=60,
    )


def test_read_only_project_folder_is_a_clear_error(shared_tmp: Path) -> None:
    """A project whose folder cannot be written to says so instead of crashing."""
    root = shared_tmp / "ro"
    root.mkdir()
    (root / "keel.yaml").write_text("name: ro\n")
    root.chmod(0o555)
    result = _open_store_unprivileged(root)
    assert result.stdout.startswith("ProjectError cannot create"), result.stdout + result.stderr
    assert "writable" in result.stdout


def test_an_existing_store_in_a_read_only_folder_is_a_clear_error(shared_tmp: Path) -> None:
    """A store created earlier whose folder is now read-only: a one-line error, no crash."""
    root = shared_tmp / "ro-store"
    root.mkdir()
    (root / "keel.yaml").write_text("name: ro\n")
    with Project.open(root) as project:
        assert project.store.dialect == "sqlite"
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    result = _open_store_unprivileged(root)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith(("ProjectError", "StoreUnavailable")), result.stdout
    assert "read-only" in result.stdout or "writable" in result.stdout, result.stdout
