"""SIGKILL under load: every prediction a writer acknowledged is in the log after restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from keel.monitoring.log import PredictionLog

WRITER = textwrap.dedent(
    """
    import sys
    from keel.monitoring.log import PredictionLog

    log = PredictionLog(sys.argv[1])
    i = 0
    while True:
        pid = log.record({"i": i, "plan": "basic"}, {"probability": i / 1e6})
        sys.stdout.write(pid + "\\n")  # acknowledged only after the fsync
        sys.stdout.flush()
        i += 1
    """
)


def test_sigkill_loses_no_acknowledged_prediction(tmp_path: Path) -> None:
    """Kill -9 a process mid-stream; a new log's replay holds every id it printed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert child.stdout is not None
    acknowledged = [child.stdout.readline().strip() for _ in range(300)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    acknowledged += [line.strip() for line in child.stdout if line.endswith("\n")]
    child.stdout.close()
    with PredictionLog(tmp_path) as log:
        log.flush()
        logged = set(log.read()["prediction_id"])
    assert set(acknowledged) <= logged
    assert len(acknowledged) >= 300
