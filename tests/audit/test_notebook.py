"""Notebooks as code: code cells out of the JSON, IPython syntax blanked, lines kept."""

from __future__ import annotations

import ast
import json

import pytest

from keel.audit._notebook import code_cells, strip_magics

from .helpers import notebook


def test_code_cells_are_numbered_among_all_cells() -> None:
    """Cell numbers count markdown cells too, as Jupyter shows them."""
    assert code_cells(notebook("a = 1\n", "b = 2\n")) == [(2, "a = 1\n"), (3, "b = 2\n")]


def test_a_source_given_as_one_string_is_read() -> None:
    """nbformat allows a cell's source as one string instead of a list of lines."""
    text = json.dumps({"cells": [{"cell_type": "code", "source": "x = 1"}]})
    assert code_cells(text) == [(1, "x = 1")]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"metadata": {}}',
        '{"cells": [3]}',
        '{"cells": [{"cell_type": "code", "source": 5}]}',
    ],
    ids=["not json", "a list", "no cells", "cell not an object", "source not text"],
)
def test_malformed_notebooks_raise_value_error(text: str) -> None:
    """Anything that is not a notebook is refused with a ValueError, not a crash."""
    with pytest.raises(ValueError):
        code_cells(text)


@pytest.mark.parametrize(
    "line",
    ["!pip install lightgbm", "%matplotlib inline", "files = !ls data", "df.head?", "%time f()"],
)
def test_ipython_lines_become_pass(line: str) -> None:
    """Shell escapes, magics and help lines parse as Python after stripping."""
    stripped = strip_magics(f"import os\n{line}\nx = 1\n")
    ast.parse(stripped)
    assert stripped.splitlines()[1].strip() == "pass"


def test_python_lines_are_left_alone() -> None:
    """Ordinary code, including % and ! inside expressions, is unchanged."""
    source = "x = 10 % 3\ny = x != 2\nprint('!done')\n"
    assert strip_magics(source) == source


def test_a_magic_inside_a_block_keeps_the_block_valid() -> None:
    """A magic indented under a for loop becomes an indented pass."""
    ast.parse(strip_magics("for i in range(2):\n    %time f(i)\n"))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("%%bash\nls -la\n", ""), ("%%time\nx = 1\n", "\nx = 1\n")],
)
def test_cell_magics(cell: str, expected: str) -> None:
    """A %%bash cell is not Python; a %%time cell's body still is, on the same lines."""
    assert strip_magics(cell) == expected
