"""A predict function or endpoint that uses its input without checking it first.

A predict function is one whose name contains ``predict``, or a web route (``@app.post``,
``@app.route``, ``@router.get``...) whose path or name mentions it or whose body calls a
``.predict...()`` method. It counts as validated when
its body checks something (an ``if``, ``assert``, ``raise``, ``try`` or ``match``, or a
call whose name says it validates), or, for a route, when a parameter has a declared
model type that the framework validates (a pydantic model for FastAPI).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from keel.audit._kinds import finding_at
from keel.audit._layout import is_test_file
from keel.audit._model import Finding
from keel.audit._pilot import CodeUnit

__all__ = ["is_validated", "predict_functions", "unvalidated_predict"]

Function = ast.FunctionDef | ast.AsyncFunctionDef

_ROUTE_METHODS = {"get", "post", "put", "patch", "route", "api_route", "websocket"}
_CHECKS = (ast.If, ast.Assert, ast.Raise, ast.Try, ast.Match, ast.IfExp)
_CHECK_WORDS = ("valid", "check", "schema", "isinstance", "parse", "verify", "clean")
_UNTYPED = {"dict", "list", "Any", "object", "Dict", "List", "bytes", "str", "Request", "Body"}


def predict_functions(nodes: tuple[ast.AST, ...]) -> Iterator[tuple[Function, bool]]:
    """Each predict function among ``nodes``, and whether it is a web route."""
    for node in nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            route = _route_path(node)
            if route is not None and ("predict" in (route + node.name).lower() or _predicts(node)):
                yield node, True
            elif _named_predict(node.name) and _inputs(node):
                yield node, False


def _named_predict(name: str) -> bool:
    """Public ``predict``, ``predict_proba``, ``batch_predict``..., but not a test of one."""
    return "predict" in name.lower() and not name.startswith(("test", "_"))


def _route_path(node: Function) -> str | None:
    for decorator in node.decorator_list:
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr in _ROUTE_METHODS
        ):
            first = decorator.args[0] if decorator.args else None
            return str(first.value) if isinstance(first, ast.Constant) else ""
    return None


def _predicts(node: Function) -> bool:
    """Whether the body calls some ``.predict...(...)`` method."""
    return any(
        isinstance(child, ast.Call)
        and isinstance(child.func, ast.Attribute)
        and child.func.attr.startswith("predict")
        for child in ast.walk(node)
    )


def _inputs(node: Function) -> list[ast.arg]:
    args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    return [arg for arg in args if arg.arg not in ("self", "cls")]


def is_validated(node: Function, route: bool) -> bool:
    """Whether the function checks its input before using it (see the module docstring)."""
    body = list(ast.walk(node))
    if any(isinstance(child, _CHECKS) for child in body):
        return True
    if any(_says_check(child) for child in body if isinstance(child, ast.Call)):
        return True
    return route and any(_typed_model(arg) for arg in _inputs(node))


def _says_check(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return any(word in name.lower() for word in _CHECK_WORDS)


def _typed_model(arg: ast.arg) -> bool:
    annotation = arg.annotation
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    name = annotation.id if isinstance(annotation, ast.Name) else None
    return name is not None and name not in _UNTYPED


def unvalidated_predict(units: tuple[CodeUnit, ...]) -> Iterator[Finding]:
    for unit in (unit for unit in units if not is_test_file(unit.file)):  # test doubles
        for node, route in predict_functions(unit.nodes):
            if not is_validated(node, route):
                what = "endpoint" if route else "function"
                message = f"predict {what} {node.name}() uses its input without checking it"
                yield finding_at("no-input-validation", unit, node, message)
