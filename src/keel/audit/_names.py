"""Names in code as the rules see them: ``np.random.seed`` read as ``numpy.random.seed``.

Imports are collected over a whole file (every cell of a notebook), so a name imported in
cell 1 resolves in cell 7, as it does when the notebook runs top to bottom.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence

__all__ = ["aliases", "calls", "constant_strings", "keyword", "qualname", "string_arg"]


def aliases(nodes: Iterable[ast.AST]) -> dict[str, str]:
    """Local name -> the dotted name it was imported as (``np`` -> ``numpy``)."""
    names: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                names[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def qualname(node: ast.expr, names: dict[str, str]) -> str | None:
    """``a.b.c`` with its head resolved through imports, or None when not a dotted name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([names.get(node.id, node.id), *reversed(parts)])


def calls(nodes: Iterable[ast.AST], names: dict[str, str]) -> Iterator[tuple[ast.Call, str]]:
    """Every call among ``nodes`` whose callee is a dotted name, with that name resolved."""
    for node in nodes:
        if isinstance(node, ast.Call):
            name = qualname(node.func, names)
            if name is not None:
                yield node, name


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    """The value passed as ``name=`` to ``call``, if any."""
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def string_arg(call: ast.Call, *keywords: str) -> str | None:
    """The first argument (or one of ``keywords``) when it is a string literal."""
    value = (
        call.args[0]
        if call.args
        else next((v for k in keywords if (v := keyword(call, k)) is not None), None)
    )
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return None


def constant_strings(nodes: Sequence[ast.AST]) -> Iterator[tuple[ast.Constant, str]]:
    """Every string literal among ``nodes`` (f-string parts included), docstrings not."""
    bare = {id(n.value) for n in nodes if isinstance(n, ast.Expr)}
    for node in nodes:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in bare:
            yield node, node.value
