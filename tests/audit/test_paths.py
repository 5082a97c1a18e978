"""Hard-coded absolute paths: machine-specific folders are flagged, portable paths are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.audit._paths import is_machine_path

from .helpers import found


@pytest.mark.parametrize(
    "text",
    [
        "/home/alice/data/train.csv",
        "/Users/bob/Desktop/model.pkl",
        "/root/models",
        "/mnt/shared/x.parquet",
        "/content/drive/MyDrive/data.csv",
        "C:\\Users\\carol\\data.csv",
        "D:/projects/churn",
        "\\\\fileserver\\share\\data.csv",
        "~/data/train.csv",
    ],
)
def test_machine_paths_are_recognised(text: str) -> None:
    """Home folders, mounts, drive letters, UNC shares and ~ are machine-specific."""
    assert is_machine_path(text)


@pytest.mark.parametrize(
    "text",
    ["data/train.csv", "./model.pkl", "/predict", "/api/v1/score", "s3://bucket/home/x", "C:"],
)
def test_portable_paths_are_not(text: str) -> None:
    """Relative paths, URL routes and object-store URLs are not machine paths."""
    assert not is_machine_path(text)


def test_a_hard_coded_path_is_found_with_its_line(tmp_path: Path) -> None:
    """A path literal in code is reported at its file and line."""
    code = 'import os\n\nMODEL = "/home/alice/models/churn.pkl"\n'
    [hit] = found(tmp_path, {"serve.py": code}, "absolute-path")
    assert (hit.file, hit.line) == ("serve.py", 3)
    assert "/home/alice/models/churn.pkl" in hit.message


def test_a_path_in_a_docstring_is_not_flagged(tmp_path: Path) -> None:
    """Documentation that mentions a path is not code that uses it."""
    code = '"""Copy the model to /home/you/models first."""\nMODEL = "models/churn.pkl"\n'
    assert found(tmp_path, {"serve.py": code}, "absolute-path") == []
