"""The ``keel`` console script and ``python -m keel``: ``keel status --json`` is answered
before the CLI framework is built, everything else by ``keel.cli.main``.

On-call scripts poll ``keel status --json``; building the Typer app (every command's
module, Rich) would double its time. Only the exact forms ``status --json`` with an
optional ``--project DIR`` / ``-p DIR`` take this path, and they print what the full
command prints; anything else (``--help``, other spellings) goes to the full CLI.
"""

from __future__ import annotations

import sys

__all__ = ["run"]


def run() -> None:
    """Console-script entry: user errors get one line on stderr and exit code 1."""
    argv = sys.argv[1:]
    if _plain_status_json(argv):
        from keel.training.status import run_status

        sys.exit(run_status(argv[1:]))
    from keel.cli.main import run as run_full

    run_full()


def _plain_status_json(argv: list[str]) -> bool:
    if argv[:1] != ["status"] or "--json" not in argv:
        return False
    rest = [a for a in argv[1:] if a != "--json"]
    return not rest or (len(rest) == 2 and rest[0] in ("--project", "-p"))
