"""How the runbook names things: each entry's anchor, and what each severity asks of on-call."""

from __future__ import annotations

import re

__all__ = ["RESPONSE", "alias", "runbook_anchor"]

RESPONSE = {
    "critical": "Page now: someone acts within minutes, day or night.",
    "warning": "Next business day: look before it becomes critical.",
    "info": "Dashboard only: no action unless it persists.",
}


def runbook_anchor(rule_name: str) -> str:
    """The stable anchor of a rule's entry: lower case, runs of other characters as ``-``.

    ``feature_drift`` becomes ``feature-drift``, the anchor the built-in rules link to.
    Page sections use ``section-`` anchors, so no rule name can collide with them.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", rule_name.lower()).strip("-")
    return slug if slug and not slug.startswith("section-") else f"rule-{slug}"


def alias(name: str, anchor: str) -> str | None:
    """``name`` as a second anchor, if it differs from ``anchor`` and is a valid one."""
    usable = re.fullmatch(r"[A-Za-z][A-Za-z0-9_.:-]*", name) is not None
    return name if usable and name != anchor else None
