"""Data read from files on this machine: ``pd.read_csv("train.csv")`` and friends."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from keel.audit._kinds import finding_at
from keel.audit._model import Finding
from keel.audit._names import aliases, calls, qualname, string_arg
from keel.audit._pilot import CodeUnit, by_file

__all__ = ["local_data", "local_file_read"]

_PANDAS_FORMATS = "csv parquet excel json table feather pickle hdf orc fwf sas stata spss xml"
_READERS = {f"pandas.read_{fmt}" for fmt in _PANDAS_FORMATS.split()} | {
    f"polars.{verb}_{fmt}" for verb in ("read", "scan") for fmt in ("csv", "parquet", "ipc")
}
_READERS |= {"numpy.load", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile"}
_DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".json", ".jsonl", ".xlsx", ".xls", ".pkl",
                  ".pickle", ".npy", ".npz", ".h5", ".feather", ".arrow")  # fmt: skip
_URL = re.compile(r"^[a-zA-Z][\w+.-]*://")
_PATH_CLASSES = {"pathlib.Path", "pathlib.PurePath", "Path"}
_PATH_KEYWORDS = ("filepath_or_buffer", "path", "io", "source", "fname", "file")


def local_file_read(call: ast.Call, name: str, names: dict[str, str]) -> str | None:
    """The local file a reader call opens, when it is named by a literal; else None."""
    if name not in _READERS and name != "open":
        return None
    target = _literal_path(call, names)
    if target is None or (_URL.match(target) and not target.startswith("file://")):
        return None
    if name == "open" and not target.lower().endswith(_DATA_SUFFIXES):
        return None
    return target


def _literal_path(call: ast.Call, names: dict[str, str]) -> str | None:
    text = string_arg(call, *_PATH_KEYWORDS)
    if text is not None:
        return text
    inner = call.args[0] if call.args else None
    if isinstance(inner, ast.Call) and qualname(inner.func, names) in _PATH_CLASSES:
        return string_arg(inner)
    return None


def local_data(units: tuple[CodeUnit, ...]) -> Iterator[Finding]:
    for file_units in by_file(units).values():
        names = aliases(node for unit in file_units for node in unit.nodes)
        for unit in file_units:
            for call, name in calls(unit.nodes, names):
                target = local_file_read(call, name, names)
                if target is not None:
                    message = f"{name.rpartition('.')[2]} reads the local file '{target}'"
                    yield finding_at("local-data", unit, call, message)
