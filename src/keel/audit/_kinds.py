"""Every kind of risk the audit reports, declared as data: severity, fix, Keel feature.

A rule module only decides *where* a risk is and says what it saw; how bad it is, how to
fix it and which part of Keel addresses it live here, in one table that reads as a list.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Protocol

from keel.audit._model import Finding, Severity

__all__ = ["KINDS", "Kind", "Located", "finding", "finding_at"]


class Located(Protocol):
    """Where code came from: a file, and the notebook cell when it is one."""

    @property
    def file(self) -> str: ...

    @property
    def cell(self) -> int | None: ...


@dataclass(frozen=True)
class Kind:
    severity: Severity
    fix: str
    keel_feature: str


_CONFIG = "${ENV} references in keel.yaml; keel config check prints them masked"
_TRAIN = "keel train: train, register and gate a version from keel.yaml's training section"
_REPEATABLE = "keel train records config and data version; pinned packages repeat the run"
_SOURCES = "keel ingest: sources in keel.yaml become validated, versioned data"

KINDS: dict[str, Kind] = {
    "credential": Kind(
        Severity.HIGH,
        "move the secret to an environment variable or secret store and rotate it",
        _CONFIG,
    ),
    "absolute-path": Kind(
        Severity.HIGH,
        "use a path relative to the project, or read it from config or the environment",
        "sources and artifacts in keel.yaml: project-relative paths or URLs",
    ),
    "no-requirements": Kind(
        Severity.HIGH,
        "add a requirements.txt (or pyproject.toml) listing every package with a version",
        _REPEATABLE,
    ),
    "missing-dependency": Kind(
        Severity.HIGH,
        "declare the package, with a version bound, in the requirements file",
        _REPEATABLE,
    ),
    "unpinned-dependency": Kind(
        Severity.MEDIUM,
        "pin the version (name==x.y.z) or at least bound it (name>=x.y,<x+1)",
        _REPEATABLE,
    ),
    "notebook-only-training": Kind(
        Severity.HIGH,
        "move the training code from the notebook into a module that a pipeline can run",
        _TRAIN,
    ),
    "unseeded-randomness": Kind(
        Severity.MEDIUM,
        "set the seed once (random.seed, np.random.seed, torch.manual_seed, random_state=)",
        "training.seed in keel.yaml: keel train seeds random, numpy and random_state",
    ),
    "local-data": Kind(
        Severity.MEDIUM,
        "read the data from a declared, versioned source instead of a file on this machine",
        _SOURCES,
    ),
    "no-tests": Kind(
        Severity.MEDIUM,
        "add a tests/ folder with pytest tests for the feature code and the predict path",
        "keel gate: the evaluation gate, with a hard-example no-regression set",
    ),
    "no-input-validation": Kind(
        Severity.MEDIUM,
        "check the input's fields, types and ranges before predicting; refuse bad requests",
        "keel serve validates each request against the model's input schema",
    ),
    "syntax-error": Kind(
        Severity.LOW,
        "fix the syntax error so the code can be imported and checked",
        "keel audit reads the rest; fix this file and audit again",
    ),
    "malformed-notebook": Kind(
        Severity.LOW,
        "re-save the notebook from Jupyter, or export its code to a .py module",
        "keel audit reads the rest; fix this file and audit again",
    ),
    "unreadable": Kind(
        Severity.LOW,
        "make the file readable (permissions, a dangling link, text encoding)",
        "keel audit reads the rest; fix this file and audit again",
    ),
    "binary-file": Kind(
        Severity.LOW,
        "remove the binary file or give it the right extension",
        "keel audit reads the rest; fix this file and audit again",
    ),
    "too-large": Kind(
        Severity.INFO,
        "keep data and generated files out of the code folder",
        "the artifact store: large files live content-addressed in .keel/artifacts",
    ),
}


def finding(
    kind: str,
    file: str,
    line: int | None,
    message: str,
    *,
    cell: int | None = None,
    fix: str | None = None,
) -> Finding:
    """A finding of ``kind``, with its severity, fix and Keel feature from the table."""
    spec = KINDS[kind]
    return Finding(
        kind=kind,
        severity=spec.severity,
        file=file,
        line=line,
        message=message,
        fix=fix or spec.fix,
        keel_feature=spec.keel_feature,
        cell=cell,
    )


def finding_at(kind: str, unit: Located, node: ast.AST, message: str) -> Finding:
    """A finding of ``kind`` at ``node`` inside a code unit (a file or a notebook cell)."""
    return finding(kind, unit.file, getattr(node, "lineno", None), message, cell=unit.cell)
