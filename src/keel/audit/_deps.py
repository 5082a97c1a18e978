"""Dependencies: no requirements file, imports nobody declared, packages without versions."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import PurePosixPath

from packaging.utils import canonicalize_name

from keel.audit._kinds import finding, finding_at
from keel.audit._model import Finding
from keel.audit._pilot import CodeUnit, Pilot
from keel.audit._requirements import PARSE_ERRORS, Declared, declared

__all__ = ["dependencies", "distributions", "local_modules", "third_party_imports"]

# Import names whose distribution is called something else on PyPI (or conda).
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "sklearn": ("scikit-learn", "sklearn"),
    "skimage": ("scikit-image",),
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv"),
    "PIL": ("pillow",),
    "yaml": ("pyyaml",),
    "bs4": ("beautifulsoup4",),
    "dateutil": ("python-dateutil",),
    "dotenv": ("python-dotenv",),
    "jwt": ("pyjwt",),
    "attr": ("attrs",),
    "Crypto": ("pycryptodome",),
    "MySQLdb": ("mysqlclient",),
    "psycopg2": ("psycopg2", "psycopg2-binary"),
    "psycopg": ("psycopg", "psycopg-binary"),
    "serial": ("pyserial",),
    "OpenSSL": ("pyopenssl",),
    "torch": ("torch", "pytorch"),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu"),
    "mpl_toolkits": ("matplotlib",),
    "fitz": ("pymupdf",),
    "docx": ("python-docx",),
    "keel": ("keel-ml",),
}

_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def distributions(module: str) -> tuple[str, ...]:
    """Canonical names of the distributions that can provide top-level ``module``."""
    return tuple(canonicalize_name(n) for n in _DISTRIBUTIONS.get(module, (module,)))


def local_modules(paths: tuple[str, ...]) -> set[str]:
    """Top-level names the pilot provides itself: its .py files and its folders."""
    names: set[str] = set()
    for path in paths:
        parts = PurePosixPath(path).parts
        names.update(parts[:-1])
        if parts[-1].endswith(".py"):
            names.add(parts[-1][:-3])
    return names


def third_party_imports(pilot: Pilot) -> dict[str, tuple[CodeUnit, ast.stmt]]:
    """Each imported top-level package that is neither stdlib nor the pilot's own: first use."""
    own = local_modules(pilot.paths) | set(sys.stdlib_module_names) | {"__future__"}
    first: dict[str, tuple[CodeUnit, ast.stmt]] = {}
    for unit in pilot.code:
        for node, module in _imports(unit.nodes):
            if module not in own:
                first.setdefault(module, (unit, node))
    return first


def _imports(nodes: tuple[ast.AST, ...]) -> Iterator[tuple[ast.stmt, str]]:
    """Top-level module of each import, except optional ones (``try: ... except ImportError``)."""
    optional = _optional(nodes)
    for node in nodes:
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            yield from ((node, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node, node.module.split(".")[0]


def _optional(nodes: tuple[ast.AST, ...]) -> set[int]:
    """Ids of the nodes inside a ``try`` whose handler catches a failed import."""
    guarded: set[int] = set()
    for node in nodes:
        if isinstance(node, ast.Try) and any(_catches_import(h) for h in node.handlers):
            guarded.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return guarded


def _catches_import(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(c, ast.Name) and c.id in _IMPORT_ERRORS for c in caught)


def dependencies(pilot: Pilot) -> Iterator[Finding]:
    imports = third_party_imports(pilot)
    if not pilot.requirements:
        if imports and not pilot.single_file:
            listed = ", ".join(sorted(imports)[:8]) + (", ..." if len(imports) > 8 else "")
            message = f"no requirements file; the code imports {listed}"
            yield finding("no-requirements", ".", None, message)
        return
    declarations: list[Declared] = []
    for req in pilot.requirements:
        try:
            declarations.extend(declared(req))
        except PARSE_ERRORS as error:
            yield finding("syntax-error", req.file, None, f"does not parse: {error}")
    if not pilot.single_file:
        yield from _missing(imports, {d.name for d in declarations})
    yield from _unpinned(declarations)


def _missing(imports: dict[str, tuple[CodeUnit, ast.stmt]], names: set[str]) -> Iterator[Finding]:
    for module, (unit, node) in sorted(imports.items()):
        if not names.intersection(distributions(module)) and not _google(module, names):
            wanted = distributions(module)[0]
            message = f"imports {module}, but no requirements file declares {wanted}"
            yield finding_at("missing-dependency", unit, node, message)


def _google(module: str, names: set[str]) -> bool:
    """``google`` is a namespace shared by many distributions: any google-* will do."""
    return module == "google" and any(n.startswith(("google-", "protobuf")) for n in names)


def _unpinned(declarations: list[Declared]) -> Iterator[Finding]:
    for dep in declarations:
        if not dep.pinned:
            message = f"{dep.name} is declared without a version"
            yield finding("unpinned-dependency", dep.file, dep.line, message)
