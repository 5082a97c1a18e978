"""Hard-coded absolute paths: a home folder, a drive letter, a mount on one machine."""

from __future__ import annotations

import re
from collections.abc import Iterator

from keel.audit._kinds import finding_at
from keel.audit._model import Finding
from keel.audit._names import constant_strings
from keel.audit._pilot import CodeUnit

__all__ = ["absolute_paths", "is_machine_path"]

_MACHINE_PATH = re.compile(
    r"""^(?:
        /(?:home|Users|root|mnt|media|content|scratch)/   # a person's or a mount's folder
      | [A-Za-z]:[\\/]                                    # C:\\ or D:/
      | \\\\[\w.$-]+\\                                    # \\\\server\\share
      | ~[/\\]                                            # ~/ (somebody's home)
    )""",
    re.VERBOSE,
)


def is_machine_path(text: str) -> bool:
    """Whether ``text`` is an absolute path that only exists on one machine."""
    return bool(_MACHINE_PATH.match(text.strip()))


def absolute_paths(units: tuple[CodeUnit, ...]) -> Iterator[Finding]:
    for unit in units:
        for node, text in constant_strings(unit.nodes):
            if is_machine_path(text):
                shown = text if len(text) <= 60 else text[:57] + "..."
                yield finding_at("absolute-path", unit, node, f"hard-coded absolute path '{shown}'")
