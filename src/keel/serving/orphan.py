"""A worker ends when the process that started it ends, however that one died.

``keel serve --workers N`` starts N workers from a supervisor. Were the supervisor killed
with SIGKILL, its workers would go on holding the port with no one to stop them. So each
worker asks to get SIGTERM when its parent dies: on Linux the kernel sends it
(``prctl(PR_SET_PDEATHSIG)``, at once); elsewhere, or should that call fail, a daemon
thread sends it within ``interval`` seconds of seeing ``os.getppid()`` change. SIGTERM is
the graceful path: uvicorn stops accepting, finishes the requests in flight and runs the
app's shutdown, which flushes the prediction log.

A command that starts ``keel serve`` for itself (``keel quickstart``, ``keel up``) names
itself in ``KEEL_SERVE_PARENT_PID``: that server then ends with it the same way, even
when the command is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

__all__ = ["PARENT_ENV", "exit_with_parent", "serve_child_env", "watch_parent"]

PARENT_ENV = "KEEL_SERVE_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def serve_child_env() -> dict[str, str]:
    """The environment for a ``keel serve`` this process starts and must not outlive."""
    return {**os.environ, PARENT_ENV: str(os.getpid())}


def exit_with_parent(parent: int, *, interval: float = 0.5) -> None:
    """Have this process get SIGTERM once ``parent`` (its parent's pid) is gone."""
    _set_parent_death_signal(signal.SIGTERM)
    threading.Thread(
        target=watch_parent, args=(parent, interval), daemon=True, name="keel-parent-watch"
    ).start()


def watch_parent(parent: int, interval: float = 0.5) -> None:
    """Block until this process's parent is no longer ``parent``, then SIGTERM this process.

    Checked after the kernel hook is set too: a parent that died just before it was set
    is seen here at once.
    """
    while os.getppid() == parent:
        time.sleep(interval)
    os.kill(os.getpid(), signal.SIGTERM)


def _set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` when the parent dies; False elsewhere or on failure."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
