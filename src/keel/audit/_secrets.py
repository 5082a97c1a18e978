"""Credentials in code: cloud keys, private keys, passwords in URLs and in assignments.

Messages never repeat the secret itself: the report may be pasted into a ticket.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from keel.audit._kinds import finding, finding_at
from keel.audit._model import Finding
from keel.audit._names import constant_strings
from keel.audit._pilot import CodeUnit, TextFile

__all__ = ["credentials", "literal_secret", "requirement_credentials", "secret_name"]

_LITERALS = (
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"), "a GitHub token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), "a Google API key"),
    (re.compile(r"\b[rs]k_live_[0-9a-zA-Z]{24,}"), "a Stripe live key"),
    (re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\b[a-zA-Z][\w+.-]*://[^\s:/@]+:(?![${<*])[^\s@/]+@"), "a URL with a password"),
)
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:password|passwd|pwd|secret|token|api_?key|apikey|access_?key|private_?key)(?:$|_)",
    re.IGNORECASE,
)
# Not secrets: the NAME_OF_AN_ENV_VAR, <placeholder>, ${VAR}, {template}, ***** or xxxx.
_PLACEHOLDER = re.compile(r"^(?:[A-Z][A-Z0-9_]*|<.*>|\$\{?.*|\{.*\}|\*+|[xX]+)$")


def literal_secret(text: str) -> str | None:
    """What kind of secret the string literal is, or None."""
    return next((what for pattern, what in _LITERALS if pattern.search(text)), None)


def secret_name(name: str, value: object) -> bool:
    """Whether assigning ``value`` to something called ``name`` hard-codes a secret."""
    if not isinstance(value, str) or len(value) < 6 or any(c.isspace() for c in value):
        return False
    return bool(_SECRET_NAME.search(name)) and not _PLACEHOLDER.match(value)


def credentials(units: tuple[CodeUnit, ...]) -> Iterator[Finding]:
    for unit in units:
        seen: set[int] = set()
        for node, message in (*_literal_hits(unit.nodes), *_named_hits(unit.nodes)):
            if node.lineno not in seen:
                seen.add(node.lineno)
                yield finding_at("credential", unit, node, message)


def requirement_credentials(requirements: tuple[TextFile, ...]) -> Iterator[Finding]:
    """Tokens in index URLs (``--extra-index-url https://user:token@...``) and the like."""
    for req in requirements:
        for number, line in enumerate(req.text.splitlines(), start=1):
            what = literal_secret(line)
            if what is not None:
                yield finding("credential", req.file, number, f"{what} in {req.file}")


def _literal_hits(nodes: tuple[ast.AST, ...]) -> Iterator[tuple[ast.expr, str]]:
    for node, text in constant_strings(nodes):
        what = literal_secret(text)
        if what is not None:
            yield node, f"{what} in a string literal"


def _named_hits(nodes: tuple[ast.AST, ...]) -> Iterator[tuple[ast.expr, str]]:
    for name, value in _named_values(nodes):
        if isinstance(value, ast.Constant) and secret_name(name, value.value):
            yield value, f"'{name}' is set to a string literal"


def _named_values(nodes: tuple[ast.AST, ...]) -> Iterator[tuple[str, ast.expr]]:
    """(name, value) for assignments, keyword arguments and dict entries."""
    for node in nodes:
        if isinstance(node, ast.Assign):
            yield from ((_target(t), node.value) for t in node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            yield _target(node.target), node.value
        elif isinstance(node, ast.keyword) and node.arg:
            yield node.arg, node.value
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    yield key.value, value


def _target(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    return ""
