"""The one expression language of keel.yaml: data rules, alert and action conditions,
serving rules and gate thresholds.

The grammar is a small subset of Python expression syntax, parsed by ``ast``: names,
literals (numbers, ``'text'``, ``true``/``false``/``null``), arithmetic (``+ - * / // %``),
comparisons (chained, ``in (...)``, ``is null``), ``and``/``or``/``not``,
``a if condition else b``, and calls of the functions the context allows. Nothing else
(attributes, subscripts, lambdas, comprehensions, keyword arguments) gets through, and a
name starting with ``__`` is refused, so a keel.yaml cannot run code. The spellings keel.yaml
has always accepted are read too: ``=`` and ``<>``, ``AND``/``OR``/``NOT``/``IS``/``IN`` in
any case, and in data rules ``"a column"`` (SQL's quoted name; elsewhere a quoted name is
written with backticks, which work everywhere). Text is quoted with ``'``; a quote inside
is doubled (``'it''s'``).

A checked expression has two back-ends over the same tree: ``evaluate`` in Python over a
mapping, and ``to_sql`` as a DuckDB expression (data rules, so ingest stays vectorised). Both
use SQL's null logic: a missing or null name is unknown, unknown propagates through
arithmetic and comparisons, ``false and unknown`` is false, ``true or unknown`` is true, and
dividing by zero is unknown. A condition that is unknown does not hold.

Every fault is an ``ExpressionError`` naming the expression, the column of the offending
token and what to do. Pure: no I/O, no ``eval``.

    >>> rule = parse("amount >= 0 OR kind = 'refund'", DATA_RULE)
    >>> print(rule.to_sql())
    (("amount" >= 0) OR ("kind" = 'refund'))
    >>> rule.evaluate({"amount": -5, "kind": "refund"}), rule.evaluate({"amount": -5})
    (True, None)
    >>> parse("distinct(age)", DATA_RULE)
    Traceback (most recent call last):
    keel.errors.ExpressionError: data rule 'distinct(age)', column 1: 'distinct' is not a ...
"""

from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from keel.errors import ExpressionError

__all__ = [
    "ACTION_CONDITION",
    "ALERT_CONDITION",
    "CONTEXTS",
    "DATA_RULE",
    "GATE_THRESHOLD",
    "PYTHON_FUNCTIONS",
    "SERVING_RULE",
    "SQL_FUNCTIONS",
    "Context",
    "Expression",
    "Function",
    "check",
    "parse",
    "parse_threshold",
]


@dataclass(frozen=True)
class Function:
    """A function a context may call: its arity and its Python implementation (``None``
    for a function only the SQL back-end runs). Arguments arrive with nulls as ``None``."""

    least: int
    most: int | None
    python: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Context:
    """Where an expression is used: what it is called in messages, the functions it may
    call, the names it may read (``None``: any name), and its spellings."""

    kind: str
    functions: Mapping[str, Function] = field(default_factory=dict)
    names: frozenset[str] | None = None
    sql_quoted_names: bool = False
    sql: bool = False


# -- functions --------------------------------------------------------------------------


def _strict(function: Callable[..., Any]) -> Callable[..., Any]:
    """Null in, null out: what SQL's scalar functions do."""

    def call(*args: Any) -> Any:
        return None if any(arg is None for arg in args) else function(*args)

    return call


def _round_half_away(value: float, digits: int = 0) -> float:
    """DuckDB's ``round``: halves away from zero, not Python's to-even."""
    exponent = Decimal(1).scaleb(-int(digits))
    return float(Decimal(repr(value)).quantize(exponent, rounding=ROUND_HALF_UP))


def _least_greatest(pick: Callable[..., Any]) -> Callable[..., Any]:
    """DuckDB's ``least``/``greatest`` skip nulls; null only when every argument is."""

    def call(*args: Any) -> Any:
        present = [arg for arg in args if arg is not None]
        return pick(present) if present else None

    return call


def _coalesce(*args: Any) -> Any:
    return next((arg for arg in args if arg is not None), None)


def _nullif(a: Any, b: Any) -> Any:
    return None if a is not None and b is not None and a == b else a


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


PYTHON_FUNCTIONS: dict[str, Function] = {
    "min": Function(1, None, _strict(min)),
    "max": Function(1, None, _strict(max)),
    "abs": Function(1, 1, _strict(abs)),
    "round": Function(1, 2, _strict(round)),
}

SQL_FUNCTIONS: dict[str, Function] = {
    "abs": Function(1, 1, _strict(abs)),
    "round": Function(1, 2, _strict(_round_half_away)),
    "floor": Function(1, 1, _strict(math.floor)),
    "ceil": Function(1, 1, _strict(math.ceil)),
    "sign": Function(1, 1, _strict(_sign)),
    "sqrt": Function(1, 1, _strict(math.sqrt)),
    "ln": Function(1, 1, _strict(math.log)),
    "log": Function(1, 1, _strict(math.log10)),
    "exp": Function(1, 1, _strict(math.exp)),
    "pow": Function(2, 2, _strict(math.pow)),
    "power": Function(2, 2, _strict(math.pow)),
    "least": Function(1, None, _least_greatest(min)),
    "greatest": Function(1, None, _least_greatest(max)),
    "coalesce": Function(1, None, _coalesce),
    "nullif": Function(2, 2, _nullif),
    "lower": Function(1, 1, _strict(str.lower)),
    "upper": Function(1, 1, _strict(str.upper)),
    "length": Function(1, 1, _strict(len)),
    "strlen": Function(1, 1, _strict(lambda s: len(s.encode()))),
    "trim": Function(1, 1, _strict(lambda s: s.strip(" "))),
    "ltrim": Function(1, 1, _strict(lambda s: s.lstrip(" "))),
    "rtrim": Function(1, 1, _strict(lambda s: s.rstrip(" "))),
    "starts_with": Function(2, 2, _strict(str.startswith)),
    "ends_with": Function(2, 2, _strict(str.endswith)),
    "contains": Function(2, 2, _strict(operator.contains)),
    "isnan": Function(1, 1, _strict(math.isnan)),
    "isinf": Function(1, 1, _strict(math.isinf)),
    # DuckDB's regular expressions (RE2) and calendar arithmetic run only in SQL
    "regexp_matches": Function(2, 3),
    "regexp_full_match": Function(2, 3),
    "date_diff": Function(3, 3),
    "datediff": Function(3, 3),
    "date_part": Function(2, 2),
    "year": Function(1, 1),
    "month": Function(1, 1),
    "day": Function(1, 1),
    "hour": Function(1, 1),
    "epoch": Function(1, 1),
}

DATA_RULE = Context("data rule", SQL_FUNCTIONS, sql_quoted_names=True, sql=True)
ALERT_CONDITION = Context("alert condition", PYTHON_FUNCTIONS)
ACTION_CONDITION = Context("action condition", PYTHON_FUNCTIONS)
SERVING_RULE = Context("serving rule", PYTHON_FUNCTIONS)
GATE_THRESHOLD = Context("gate threshold", names=frozenset({"value"}))
CONTEXTS = (DATA_RULE, ALERT_CONDITION, ACTION_CONDITION, SERVING_RULE, GATE_THRESHOLD)

_BY_KIND = {context.kind: context for context in CONTEXTS}


def check(text: str, kind: str) -> None:
    """Check ``text`` as an expression of ``kind`` (a context's ``kind``, e.g. "data rule")."""
    if kind == GATE_THRESHOLD.kind:
        parse_threshold(text)
    else:
        parse(text, _BY_KIND[kind])


# -- reading the text -------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    | (?P<text>'(?:[^']|'')*')
    | (?P<dquoted>"(?:[^"]|"")*")
    | (?P<backtick>`(?:[^`]|``)+`)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>[^\W\d]\w*)
    | (?P<op><>|==|!=|<=|>=|=|.)""",
    re.VERBOSE | re.DOTALL,
)
_WORDS = {
    "and": "and",
    "or": "or",
    "not": "not",
    "is": "is",
    "in": "in",
    "true": "True",
    "false": "False",
    "null": "None",
    "none": "None",
}
_QUOTED = "_keel_quoted_"


@dataclass
class _Source:
    """The text rewritten as Python, with where each piece came from."""

    python: str = ""
    starts: list[tuple[int, int]] = field(default_factory=list)  # (python offset, text offset)
    quoted: dict[str, str] = field(default_factory=dict)  # placeholder -> real name

    def add(self, piece: str, at: int) -> None:
        if not self.python:
            piece = piece.lstrip()  # Python reads leading space as an indent
            if not piece:
                return
        self.starts.append((len(self.python), at))
        self.python += piece

    def origin(self, offset: int) -> int:
        """The text offset of the piece holding this Python offset."""
        found = 0
        for python_at, text_at in self.starts:
            if python_at > offset:
                break
            found = text_at
        return found


def _read(text: str, context: Context) -> _Source:
    source = _Source()
    for match in _TOKEN.finditer(text):
        kind, piece, at = match.lastgroup, match.group(), match.start()
        if kind == "space":
            source.add(" ", at)
        elif kind == "text":
            source.add(repr(piece[1:-1].replace("''", "'")), at)
        elif kind == "dquoted" and not context.sql_quoted_names:
            source.add(repr(piece[1:-1].replace('""', '"')), at)
        elif kind in ("dquoted", "backtick"):
            mark = piece[0]
            source.add(_placeholder(source, piece[1:-1].replace(mark * 2, mark)), at)
        elif kind == "name":
            source.add(_word(piece, text, at, context), at)
        elif kind == "number":
            source.add(piece.lower(), at)
        else:
            source.add({"=": "==", "<>": "!="}.get(piece, piece), at)
    return source


def _placeholder(source: _Source, name: str) -> str:
    for placeholder, known in source.quoted.items():
        if known == name:
            return placeholder
    placeholder = f"{_QUOTED}{len(source.quoted)}"
    source.quoted[placeholder] = name
    return placeholder


def _word(piece: str, text: str, at: int, context: Context) -> str:
    if piece.startswith("__") or piece.startswith(_QUOTED):
        reason = f"'{piece}' is not a name keel.yaml may use"
        raise ExpressionError(text, at, reason, context.kind)
    word = _WORDS.get(piece.lower())
    return piece if word is None else f" {word} "  # spaced, so ``1and`` reads as ``1 and``


# -- checking the tree ------------------------------------------------------------------

_BINARY: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
}
_COMPARE: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_WHAT = {
    "Attribute": "attribute access (a.b)",
    "Subscript": "indexing (a[b])",
    "Lambda": "a lambda",
    "ListComp": "a comprehension",
    "SetComp": "a comprehension",
    "DictComp": "a comprehension",
    "GeneratorExp": "a comprehension",
    "NamedExpr": "assignment (:=)",
    "JoinedStr": "an f-string",
    "Starred": "unpacking (*)",
    "Dict": "a mapping",
    "Set": "a set",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield",
}


class _Checker:
    """Walks the tree once, refusing anything outside the grammar for this context."""

    def __init__(self, text: str, source: _Source, context: Context, names: Iterable[str] | None):
        self.text, self.source, self.context = text, source, context
        self.names = context.names if names is None else frozenset(names)

    def fail(self, node: ast.AST, reason: str) -> ExpressionError:
        if isinstance(node, ast.Attribute | ast.Subscript):  # point at the '.' or '['
            node = ast.Constant(None, col_offset=node.value.end_col_offset or 0)
        column = _char_offset(self.source.python, getattr(node, "col_offset", 0))
        return ExpressionError(self.text, self.source.origin(column), reason, self.context.kind)

    def check(self, node: ast.expr) -> None:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            what = _WHAT.get(type(node).__name__, type(node).__name__)
            raise self.fail(node, f"{what} is not part of keel.yaml's expression language")
        method(node)

    def _Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, bool | int | float | str | None):
            raise self.fail(node, f"{node.value!r} is not a number, text, true, false or null")

    def _Name(self, node: ast.Name) -> None:
        name = self.source.quoted.get(node.id, node.id)
        if self.names is not None and name not in self.names:
            known = ", ".join(sorted(self.names)) or "none"
            raise self.fail(node, f"'{name}' is not a name {self.context.kind}s can read "
                                  f"(it can read: {known})")  # fmt: skip

    def _BoolOp(self, node: ast.BoolOp) -> None:
        for value in node.values:
            self.check(value)

    def _UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Invert):
            raise self.fail(node, "'~' is not part of keel.yaml's expression language")
        self.check(node.operand)

    def _BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) not in _BINARY:
            raise self.fail(node, "only + - * / // and % are allowed between values")
        self.check(node.left)
        self.check(node.right)

    def _Compare(self, node: ast.Compare) -> None:
        self.check(node.left)
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot):
                if not (isinstance(right, ast.Constant) and right.value is None):
                    raise self.fail(right, "'is' compares only with null: write 'x is null'")
            elif isinstance(op, ast.In | ast.NotIn):
                self._choices(right)
                continue
            self.check(right)

    def _choices(self, node: ast.expr) -> None:
        if not isinstance(node, ast.Tuple | ast.List) or not node.elts:
            raise self.fail(node, "'in' takes a list of values in brackets: x in ('a', 'b')")
        for element in node.elts:
            self.check(element)

    def _IfExp(self, node: ast.IfExp) -> None:
        for part in (node.test, node.body, node.orelse):
            self.check(part)

    def _Call(self, node: ast.Call) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        function = self.context.functions.get(name or "")
        if name is None or function is None:
            allowed = ", ".join(sorted(self.context.functions)) or "none"
            called = f"'{name}'" if name else "this"
            raise self.fail(node, f"{called} is not a function {self.context.kind}s may call "
                                  f"(allowed: {allowed})")  # fmt: skip
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.fail(node, f"{name} takes plain arguments, without names or *")
        count = len(node.args)
        if count < function.least or (function.most is not None and count > function.most):
            raise self.fail(node, f"{name} takes {_arity(function)}, not {count}")
        for arg in node.args:
            self.check(arg)


def _arity(function: Function) -> str:
    if function.most == function.least:
        return f"{function.least} argument{'s' if function.least != 1 else ''}"
    if function.most is None:
        return f"at least {function.least} argument{'s' if function.least != 1 else ''}"
    return f"{function.least} to {function.most} arguments"


def _char_offset(python: str, byte_offset: int) -> int:
    return len(python.encode()[:byte_offset].decode(errors="ignore"))


# -- the checked expression -------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its context and its tree."""

    text: str
    context: Context
    tree: ast.expr
    source: _Source = field(repr=False, compare=False)

    @property
    def quoted(self) -> Mapping[str, str]:
        return self.source.quoted

    def offset_of(self, node: ast.AST) -> int:
        """Where in ``text`` a node of the tree starts (0-based)."""
        return self.source.origin(_char_offset(self.source.python, getattr(node, "col_offset", 0)))

    @property
    def names(self) -> list[str]:
        """The names the expression reads, in order of first use."""
        found = _names(self.tree, self.quoted)
        return list(dict.fromkeys(found))

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """The value over ``values``; a missing name is null. ``None`` means unknown."""
        return _Python(self, values).value(self.tree)

    def holds(self, values: Mapping[str, Any]) -> bool:
        """Whether the expression is true over ``values`` (unknown does not hold)."""
        return bool(self.evaluate(values))

    def to_sql(self) -> str:
        """The expression as a DuckDB SQL expression, names as quoted identifiers."""
        if not self.context.sql:
            raise ExpressionError(self.text, 0, "only data rules run as SQL", self.context.kind)
        return _sql(self.tree, self.quoted)


def parse(text: str, context: Context, names: Iterable[str] | None = None) -> Expression:
    """Check ``text`` against the grammar and ``context``; ``names`` narrows the names it
    may read (e.g. a batch's columns). An ``ExpressionError`` says what is wrong and where."""
    if not text.strip():
        raise ExpressionError(text, 0, "it is empty; write a condition", context.kind)
    source = _read(text, context)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "invalid decimal literal": refused below
            tree = ast.parse(source.python, mode="eval").body
    except SyntaxError as error:
        raise _syntax(text, source, error, context) from None
    _Checker(text, source, context, names).check(tree)
    return Expression(text, context, tree, source)


_HINTS = {
    "between": "write low <= x <= high instead of between",
    "like": "use starts_with, ends_with, contains or regexp_matches instead of like",
    "ilike": "use lower(x) with starts_with, ends_with or contains instead of ilike",
    "select": "a rule reads the row it is given; it cannot run a query",
}


def _syntax(text: str, source: _Source, error: SyntaxError, context: Context) -> ExpressionError:
    offset = (error.offset or 0) - 1
    if offset < 0 or offset >= len(source.python.rstrip()):
        return ExpressionError(text, len(text.rstrip()), "it ends too early", context.kind)
    at = source.origin(offset)
    if "never closed" in (error.msg or "") or "unmatched" in (error.msg or ""):
        return ExpressionError(text, at, "its brackets do not pair up", context.kind)
    token = (text[at:].split() or [""])[0][:20]
    hint = _HINTS.get(token.lower(), "write e.g. amount >= 0 and kind == 'refund'")
    return ExpressionError(text, at, f"'{token}' cannot stand here; {hint}", context.kind)


def parse_threshold(text: str) -> tuple[str, float]:
    """A gate threshold, ``">= 0.8"``, as ``(">=", 0.8)``: one comparison with a number."""
    prefix = "value "
    try:
        tree = parse(prefix + text, GATE_THRESHOLD).tree
    except ExpressionError as error:
        raise _not_a_threshold(text, max(error.column - 1 - len(prefix), 0)) from None
    if not (
        isinstance(tree, ast.Compare)
        and isinstance(tree.left, ast.Name)
        and len(tree.ops) == 1
        and isinstance(tree.ops[0], ast.GtE | ast.LtE | ast.Gt | ast.Lt | ast.Eq)
    ):
        raise _not_a_threshold(text, 0)
    bound = _number(tree.comparators[0])
    if bound is None:
        raise _not_a_threshold(text, 0)
    return _COMPARE[type(tree.ops[0])], bound


def _not_a_threshold(text: str, at: int) -> ExpressionError:
    return ExpressionError(
        text, at, 'it is not a comparison; write e.g. ">= 0.80"', GATE_THRESHOLD.kind
    )


def _number(node: ast.expr) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return None if isinstance(node.value, bool) else float(node.value)
    return None


def _names(tree: ast.expr, quoted: Mapping[str, str]) -> Iterator[str]:
    calls = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    nodes = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in calls),
        key=lambda node: node.col_offset,
    )
    for node in nodes:
        yield quoted.get(node.id, node.id)


# -- back-end 1: Python -----------------------------------------------------------------

_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_ORDER: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class _Python:
    """Evaluates a checked tree with SQL's null logic."""

    def __init__(self, expression: Expression, values: Mapping[str, Any]) -> None:
        self.expression, self.values = expression, values

    def value(self, node: ast.expr) -> Any:
        try:
            return getattr(self, f"_{type(node).__name__}")(node)
        except (TypeError, ValueError, OverflowError) as error:
            raise ExpressionError(
                self.expression.text,
                self.expression.offset_of(node),
                f"it cannot be computed for these values ({error})",
                self.expression.context.kind,
            ) from None

    def _Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        return self.values.get(self.expression.quoted.get(node.id, node.id))

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        stop = isinstance(node.op, ast.Or)  # the truth that decides: true for or, false for and
        unknown, last = False, None
        for part in node.values:
            last = self.value(part)
            if last is None:
                unknown = True
            elif bool(last) is stop:
                return last
        return None if unknown else last

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.value(node.operand)
        if operand is None:
            return None
        if isinstance(node.op, ast.Not):
            return not operand
        return -operand if isinstance(node.op, ast.USub) else +operand

    def _BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.value(node.left), self.value(node.right)
        if left is None or right is None:
            return None
        if right == 0 and isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod):
            return None
        return _ARITHMETIC[type(node.op)](left, right)

    def _Compare(self, node: ast.Compare) -> Any:
        results: list[bool | None] = []
        left = self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot):
                results.append((left is None) is isinstance(op, ast.Is))
                continue
            right = self._choices(right_node) if isinstance(op, ast.In | ast.NotIn) else None
            if right is None:
                right = self.value(right_node)
                results.append(_order(op, left, right))
            else:
                results.append(_member(left, right, isinstance(op, ast.NotIn)))
            left = right
        return _all(results)

    def _choices(self, node: ast.expr) -> list[Any]:
        assert isinstance(node, ast.Tuple | ast.List)
        return [self.value(element) for element in node.elts]

    def _IfExp(self, node: ast.IfExp) -> Any:
        test = self.value(node.test)
        if test is None:
            return None
        return self.value(node.body) if test else self.value(node.orelse)

    def _Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)
        function = self.expression.context.functions[node.func.id]
        if function.python is None:
            raise ExpressionError(
                self.expression.text,
                self.expression.offset_of(node),
                f"{node.func.id} runs only in SQL, over a batch",
                self.expression.context.kind,
            )
        return function.python(*(self.value(arg) for arg in node.args))


def _order(op: ast.cmpop, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    return _ORDER[type(op)](left, right)


def _member(left: Any, choices: list[Any], negate: bool) -> bool | None:
    if left is None:
        return None
    if any(choice == left for choice in choices if choice is not None):
        return not negate
    return None if any(choice is None for choice in choices) else negate


def _all(results: list[bool | None]) -> bool | None:
    if any(result is False for result in results):
        return False
    return None if any(result is None for result in results) else True


# -- back-end 2: DuckDB SQL -------------------------------------------------------------

_SQL_COMPARE = {**_COMPARE, ast.Eq: "=", ast.NotEq: "<>", ast.Is: "IS", ast.IsNot: "IS NOT"}
_SQL_COMPARE.update({ast.In: "IN", ast.NotIn: "NOT IN"})


def _sql(node: ast.expr, quoted: Mapping[str, str]) -> str:
    def sql(node: ast.expr) -> str:
        return _sql(node, quoted)

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
    return f"({left} {_BINARY[type(op)]} {right})"


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
