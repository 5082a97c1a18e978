"""The pilot audit: what in a data scientist's pilot will break in production.

``audit(path)`` reads Python files, Jupyter notebooks and requirements files under
``path`` and returns an ``AuditReport``: each ``Finding`` has a kind, a severity, a
place (file and line, or notebook cell and line), a one-line fix and the Keel feature
that addresses it. Reading happens once, in ``load_pilot``; every rule is a pure
function over the loaded ``Pilot``.
"""

from __future__ import annotations

from keel.audit._audit import audit, check_pilot
from keel.audit._kinds import KINDS, Kind
from keel.audit._model import AuditReport, Finding, Severity
from keel.audit._pilot import MAX_BYTES, CodeUnit, Pilot, load_pilot

__all__ = [
    "KINDS",
    "MAX_BYTES",
    "AuditReport",
    "CodeUnit",
    "Finding",
    "Kind",
    "Pilot",
    "Severity",
    "audit",
    "check_pilot",
    "load_pilot",
]
