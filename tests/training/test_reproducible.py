"""Reproducibility: the same config and data give a byte-identical model artifact."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from keel.training.artifact import dump_bundle, make_bundle
from keel.training.inputs import infer_schema, prepare
from tests.training.conftest import TRAINING, churn_frame, write_project

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _artifact_digest(root: Path, digest: str) -> str:
    blob = root / ".keel" / "artifacts" / "sha256" / digest[:2] / digest
    return hashlib.sha256(blob.read_bytes()).hexdigest()


def _train_in_another_process(root: Path) -> str:
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-m", "keel", "train", "--json", "--project", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    digest: str = json.loads(done.stdout)["version"]["artifact"]
    return _artifact_digest(root, digest)


def test_two_processes_give_identical_artifacts(tmp_path: Path) -> None:
    """`keel train` in two fresh processes, in two folders, yields the same sha256; and
    training inside this process yields it too while nothing else has run here first."""
    first = _train_in_another_process(write_project(tmp_path / "a", TRAINING))
    second = _train_in_another_process(write_project(tmp_path / "b", TRAINING))
    assert first == second
    probe = [sys.executable, "-c", _IN_PROCESS, str(write_project(tmp_path / "c", TRAINING))]
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(probe, capture_output=True, text=True, env=env, timeout=120, check=True)
    assert _artifact_digest(tmp_path / "c", done.stdout.strip()) == first


_IN_PROCESS = """
import sys
from keel.project import Project
from keel.training import train
with Project.open(sys.argv[1]) as project:
    print(train(project).version.artifact)
"""


def test_thread_count_does_not_change_the_bytes() -> None:
    """A model fitted on one OpenMP thread and on two serialises to the same bytes."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    frame = churn_frame()
    schema = infer_schema(frame[["age", "spend", "region"]])
    blobs = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            model = HistGradientBoostingClassifier(max_iter=10, random_state=0)
            model.fit(prepare(frame, schema), frame["churned"])
        blobs.append(dump_bundle(make_bundle(model, schema, "churned")))
    assert blobs[0] == blobs[1]
