"""What the audit survives: broken notebooks, binary and huge files, bad paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.audit import MAX_BYTES, audit
from keel.errors import AuditError

from ..helpers import as_unprivileged
from .helpers import notebook, write_pilot

GOOD = 'MODEL = "/home/alice/model.pkl"\n'


def _kinds(root: Path) -> dict[str, str]:
    return {f.file: f.kind for f in audit(root).findings if f.kind != "no-tests"}


def test_a_missing_path_is_one_clear_error(tmp_path: Path) -> None:
    """A path that does not exist is an AuditError that names it."""
    with pytest.raises(AuditError, match="does-not-exist does not exist"):
        audit(tmp_path / "does-not-exist")


def test_a_single_file_can_be_audited(tmp_path: Path) -> None:
    """Given one file, the audit reads just that file."""
    write_pilot(tmp_path, {"serve.py": GOOD, "other.py": GOOD})
    report = audit(tmp_path / "serve.py")
    assert report.files == ("serve.py",)
    assert [f.kind for f in report.findings if f.kind == "absolute-path"] == ["absolute-path"]


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("broken.ipynb", "{not json", "malformed-notebook"),
        ("list.ipynb", "[]", "malformed-notebook"),
        ("blob.py", b"\x7fELF\x00\x00binary", "binary-file"),
        ("latin1.py", "name = 'café'\n".encode("latin-1"), "binary-file"),
        ("syntax.py", "def broken(:\n", "syntax-error"),
    ],
)
def test_a_bad_file_is_a_finding_and_the_rest_is_read(
    tmp_path: Path, name: str, content: str | bytes, kind: str
) -> None:
    """Each unreadable file is reported by kind, and the good file is still audited."""
    write_pilot(tmp_path, {name: content, "serve.py": GOOD})
    assert _kinds(tmp_path) == {name: kind, "serve.py": "absolute-path"}


def test_a_utf16_requirements_file_is_read(tmp_path: Path) -> None:
    """pip freeze in PowerShell writes UTF-16 with a BOM; it is read, not called binary."""
    files = {"requirements.txt": "flask\r\n".encode("utf-16"), "a.py": "import flask\n"}
    write_pilot(tmp_path, files)
    kinds = {(f.file, f.kind) for f in audit(tmp_path).findings}
    assert ("requirements.txt", "unpinned-dependency") in kinds
    assert not {kind for _, kind in kinds} & {"binary-file", "missing-dependency"}


def test_a_cell_that_does_not_parse_does_not_hide_the_others(tmp_path: Path) -> None:
    """A syntax error in one cell is located by cell; the next cell is still checked."""
    write_pilot(tmp_path, {"nb.ipynb": notebook("def broken(:\n", GOOD)})
    found = [(f.kind, f.cell) for f in audit(tmp_path).findings if f.kind != "no-tests"]
    assert found == [("absolute-path", 3), ("syntax-error", 2)]


def test_a_huge_file_is_skipped_with_a_finding(tmp_path: Path) -> None:
    """A file over the 5 MB limit is not read; a finding says it was skipped."""
    write_pilot(tmp_path, {"generated.py": "x = 1\n" * (MAX_BYTES // 6 + 1), "serve.py": GOOD})
    [hit] = [f for f in audit(tmp_path).findings if f.kind == "too-large"]
    assert (hit.file, hit.severity.value) == ("generated.py", "info")
    assert "5.0 MB" in hit.message


def test_a_dangling_link_is_unreadable(tmp_path: Path) -> None:
    """A .py link to nowhere is reported as unreadable, not raised."""
    (tmp_path / "gone.py").symlink_to(tmp_path / "nowhere.py")
    assert _kinds(tmp_path) == {"gone.py": "unreadable"}


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    """A named pipe called .py is skipped (reading it would block forever)."""
    os.mkfifo(tmp_path / "pipe.py")
    assert _kinds(tmp_path) == {"pipe.py": "unreadable"}


def test_environments_and_hidden_folders_are_not_audited(tmp_path: Path) -> None:
    """Virtualenvs, checkpoints and caches are someone else's code."""
    files = {
        f"{folder}/mod.py": GOOD
        for folder in (".venv", "venv", ".ipynb_checkpoints", "__pycache__", "node_modules")
    }
    write_pilot(tmp_path, files)
    assert audit(tmp_path).findings == ()


def test_a_single_file_is_not_judged_as_a_whole_pilot(tmp_path: Path) -> None:
    """Alone, a notebook is not blamed for the folder's missing tests or requirements."""
    cell = "import numpy as np\nfrom sklearn.svm import SVC\nSVC().fit(X, y)\n"
    write_pilot(tmp_path, {"nb.ipynb": notebook(cell)})
    kinds = {f.kind for f in audit(tmp_path / "nb.ipynb").findings}
    assert not kinds & {"no-tests", "no-requirements", "notebook-only-training"}
    assert {f.kind for f in audit(tmp_path).findings} >= {"no-tests", "notebook-only-training"}


def test_an_unsupported_single_file_is_one_clear_error(tmp_path: Path) -> None:
    """Auditing a file the audit cannot read (a README) says what it expects instead."""
    write_pilot(tmp_path, {"README.md": "# pilot\n"})
    with pytest.raises(AuditError, match="not a Python file, notebook or requirements file"):
        audit(tmp_path / "README.md")


@pytest.fixture
def locked_pilot() -> Iterator[Path]:
    """A pilot outside pytest's private tmp (so another user can enter it) with a file
    and a folder that only root may read."""
    root = Path(tempfile.mkdtemp(prefix="keel-audit-"))
    root.chmod(0o755)
    write_pilot(root, {"serve.py": GOOD, "secret.py": GOOD, "private/x.py": GOOD})
    (root / "secret.py").chmod(0o000)
    (root / "private").chmod(0o000)
    yield root
    (root / "private").chmod(0o755)
    subprocess.run(["rm", "-rf", str(root)], check=True)


def test_files_and_folders_without_permission_are_reported(locked_pilot: Path) -> None:
    """Run as an unprivileged user, what it may not read is reported and the rest audited."""
    result = subprocess.run(
        as_unprivileged([sys.executable, "-m", "keel", "audit", "--json", str(locked_pilot)]),
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = {(f["file"], f["kind"]) for f in json.loads(result.stdout)["findings"]}
    assert found >= {
        ("secret.py", "unreadable"),
        ("private", "unreadable"),
        ("serve.py", "absolute-path"),
    }


def test_an_empty_folder_has_nothing_to_report(tmp_path: Path) -> None:
    """No code, no requirements: nothing read and no risks, rather than an error."""
    report = audit(tmp_path)
    assert (report.files, report.findings) == ((), ())
