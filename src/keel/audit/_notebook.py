"""Jupyter notebooks as code: the code cells of the JSON, with IPython syntax blanked out.

Pure functions over text. Shell escapes (``!pip install``), line magics (``%matplotlib``)
and help lines (``df.head?``) become ``pass`` at the same indentation, so line numbers
inside a cell stay true and the rest of the cell still parses with ``ast``.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["code_cells", "strip_magics"]

# Cell magics whose body is still Python; any other %%magic cell (%%bash, %%sql) is not.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}
_MAGIC_LINE = re.compile(r"^\s*(?:[!%]|[\w.,\s\[\]]+=\s*[!%]|[\w.]+\?{1,2}\s*$)")


def code_cells(text: str) -> list[tuple[int, str]]:
    """(1-based position among all cells, source) of each code cell.

    Raises ``ValueError`` (a ``json.JSONDecodeError`` among them) when the text is not a
    notebook.
    """
    cells = _cells(json.loads(text))
    found = []
    for position, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise ValueError(f"cell {position} is not a JSON object")
        if cell.get("cell_type") == "code":
            found.append((position, _source(cell.get("source", cell.get("input", "")))))
    return found


def _cells(data: Any) -> list[Any]:
    if not isinstance(data, dict):
        raise ValueError("the file is JSON but not a notebook object")
    cells = data.get("cells")
    worksheets = data.get("worksheets")
    if cells is None and isinstance(worksheets, list) and worksheets:  # nbformat 3
        cells = worksheets[0].get("cells") if isinstance(worksheets[0], dict) else None
    if not isinstance(cells, list):
        raise ValueError("the notebook has no list of cells")
    return cells


def _source(source: Any) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    raise ValueError("a code cell's source is neither text nor a list of lines")


def strip_magics(source: str) -> str:
    """The cell's Python with IPython-only lines turned into ``pass``; '' for a %%bash cell."""
    lines = source.split("\n")
    if lines and lines[0].startswith("%%"):
        name = lines[0][2:].split(maxsplit=1)[0] if lines[0][2:].strip() else ""
        if name not in _PYTHON_CELL_MAGICS:
            return ""
        lines[0] = ""
    return "\n".join(_plain(line) for line in lines)


def _plain(line: str) -> str:
    if not _MAGIC_LINE.match(line):
        return line
    indent = line[: len(line) - len(line.lstrip())]
    return f"{indent}pass"
