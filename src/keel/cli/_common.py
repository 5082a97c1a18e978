"""What every command shares: the --project and --json options and how results print.

Command modules import only this and typer at import time; anything heavy is imported
inside the command body so ``keel --help`` stays fast.

A path typed on the command line (an option or an argument, --project included) is
relative to the working directory, as in any Unix command (``typed_path``); only the paths
inside keel.yaml are relative to the project.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from keel.project import Project

__all__ = [
    "EngineOpt",
    "JsonOpt",
    "ProjectOpt",
    "check_engine",
    "console",
    "emit",
    "open_project",
    "progress",
    "typed_path",
]

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        help="Project folder (default: the nearest folder with a keel.yaml, from the cwd up).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", help="local or dask (default: compute.engine in keel.yaml)."),
]


def check_engine(engine: str | None) -> None:
    """Refuse an --engine that is neither local nor dask, in one sentence."""
    from keel.errors import ConfigError

    if engine not in (None, "local", "dask"):
        raise ConfigError(f"--engine is local or dask, not '{engine}'")


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def open_project(path: Path | None) -> Project:
    from keel.project import Project

    return Project.open(path)


def typed_path(text: str) -> str:
    """A path typed on the command line as the absolute path it names from the working
    directory (a glob stays a glob); a URL (``s3://...``) as it is."""
    return text if "://" in text else str(Path(text).expanduser().absolute())


def emit(as_json: bool, data: Any, human: Callable[[Console], None]) -> None:
    """Print ``data`` as JSON, or call ``human`` with a console for people."""
    if as_json:
        import orjson

        options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        sys.stdout.write(orjson.dumps(data, default=str, option=options).decode() + "\n")
    else:
        human(console())


@contextmanager
def progress(message: str, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr while long work runs; yields a function to change its text.

    ``quiet`` (set by --json) shows nothing, so scripts read clean output.
    """
    if quiet:
        yield lambda _message: None
        return
    with console(stderr=True).status(message) as status:
        yield lambda text: status.update(text)


@contextmanager
def cancellable() -> Iterator[threading.Event]:
    """Ctrl-C as a set event (then KeyboardInterrupt as usual): a query DuckDB was running
    when it came turns the interrupt into its own error ("Query interrupted"), which must
    still read as a cancel."""
    cancelled = threading.Event()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        cancelled.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield cancelled
    finally:
        signal.signal(signal.SIGINT, previous)
