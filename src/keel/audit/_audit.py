"""``audit(path)``: read the pilot once, run every rule over it, sort what they found."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from keel.audit._data import local_data
from keel.audit._deps import dependencies
from keel.audit._layout import no_tests, notebook_only_training
from keel.audit._model import AuditReport, Finding
from keel.audit._paths import absolute_paths
from keel.audit._pilot import MAX_BYTES, Pilot, load_pilot
from keel.audit._predict import unvalidated_predict
from keel.audit._secrets import credentials, requirement_credentials
from keel.audit._seeds import unseeded_randomness

__all__ = ["RULES", "audit", "check_pilot"]

Rule = Callable[[Pilot], Iterable[Finding]]

RULES: tuple[Rule, ...] = (
    lambda pilot: credentials(pilot.code),
    lambda pilot: requirement_credentials(pilot.requirements),
    lambda pilot: absolute_paths(pilot.code),
    dependencies,
    notebook_only_training,
    lambda pilot: unseeded_randomness(pilot.code),
    lambda pilot: local_data(pilot.code),
    no_tests,
    lambda pilot: unvalidated_predict(pilot.code),
)


def check_pilot(pilot: Pilot) -> AuditReport:
    """Every rule's findings on an already-read pilot, worst first. No I/O."""
    found = [*pilot.problems, *(f for rule in RULES for f in rule(pilot))]
    return AuditReport(pilot.root, pilot.files, tuple(sorted(found, key=Finding.sort_key)))


def audit(path: str | Path, *, max_bytes: int = MAX_BYTES) -> AuditReport:
    """List what in the pilot under ``path`` (a folder or one file) will break in production.

    Files over ``max_bytes`` are skipped with a finding; unreadable, binary and malformed
    files are reported as findings too, and the rest is still read.
    Raises ``AuditError`` when ``path`` does not exist or cannot be listed.
    """
    return check_pilot(load_pilot(Path(path), max_bytes))
