"""Back-end two: a checked tree as a DuckDB SQL expression."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

from keel.expressions._grammar import BINARY, COMPARE

__all__ = ["sql_of"]

_SQL_COMPARE = {**COMPARE, ast.Eq: "=", ast.NotEq: "<>", ast.Is: "IS", ast.IsNot: "IS NOT"}
_SQL_COMPARE.update({ast.In: "IN", ast.NotIn: "NOT IN"})


def sql_of(node: ast.expr, quoted: Mapping[str, str]) -> str:
    def sql(node: ast.expr) -> str:
        return sql_of(node, quoted)

    if isinstance(node, ast.Constant):
        return _literal(node.value)
    if isinstance(node, ast.Name):
        name = quoted.get(node.id, node.id)
        return '"' + name.replace('"', '""') + '"'
    if isinstance(node, ast.BoolOp):
        joiner = " AND " if isinstance(node.op, ast.And) else " OR "
        return "(" + joiner.join(sql(value) for value in node.values) + ")"
    if isinstance(node, ast.UnaryOp):
        op = {ast.Not: "NOT ", ast.USub: "-", ast.UAdd: "+"}[type(node.op)]
        return f"({op}{sql(node.operand)})"
    if isinstance(node, ast.BinOp):
        return _sql_binary(node.op, sql(node.left), sql(node.right))
    if isinstance(node, ast.Compare):
        return _sql_compare(node, sql)
    if isinstance(node, ast.IfExp):
        test = sql(node.test)
        return (
            f"(CASE WHEN {test} IS NULL THEN NULL WHEN {test} THEN {sql(node.body)} "
            f"ELSE {sql(node.orelse)} END)"
        )
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return f"{node.func.id}({', '.join(sql(arg) for arg in node.args)})"


def _sql_binary(op: ast.operator, left: str, right: str) -> str:
    if isinstance(op, ast.Div):  # always real division, null for a zero divisor, as in Python
        return f"(CAST({left} AS DOUBLE) / NULLIF({right}, 0))"
    if isinstance(op, ast.FloorDiv):
        return f"floor(CAST({left} AS DOUBLE) / NULLIF({right}, 0))"
    if isinstance(op, ast.Mod):  # Python's modulo takes the divisor's sign; SQL's the dividend's
        divisor = f"NULLIF({right}, 0)"
        return f"((({left}) % {divisor} + {divisor}) % {divisor})"
    return f"({left} {BINARY[type(op)]} {right})"


def _sql_compare(node: ast.Compare, sql: Callable[[ast.expr], str]) -> str:
    pairs, left = [], sql(node.left)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        if isinstance(right_node, ast.Tuple | ast.List) and isinstance(op, ast.In | ast.NotIn):
            right = "(" + ", ".join(sql(element) for element in right_node.elts) + ")"
        else:
            right = sql(right_node)
        pairs.append(f"({left} {_SQL_COMPARE[type(op)]} {right})")
        left = right
    return pairs[0] if len(pairs) == 1 else "(" + " AND ".join(pairs) + ")"


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float) and not math.isfinite(value):
        return f"CAST('{value}' AS DOUBLE)"
    return repr(value)
