"""Reproducibility: the same config and data give a byte-identical model artifact."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from keel.project import Project
from keel.training import train
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
    """Training here (a long-lived process that has run other tests first) and in a fresh
    process, in two folders, yields the same sha256."""
    with Project.open(write_project(tmp_path / "a", TRAINING)) as project:
        here = _artifact_digest(project.root, train(project).version.artifact)
    there = _train_in_another_process(write_project(tmp_path / "b", TRAINING))
    assert here == there


def test_a_round_tripped_part_does_not_change_the_bytes() -> None:
    """A fitted model whose label encoder holds its attribute names as other string objects
    (equal, not interned: what scikit-learn's ``__setstate__`` leaves after a pickle round
    trip, in a joblib worker or a copy) serialises to the same bytes as a fresh fit."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = churn_frame()
    schema = infer_schema(frame[["age", "spend", "region"]])
    blobs = []
    for renamed_names in (False, True):
        model = HistGradientBoostingClassifier(max_iter=5, random_state=0)
        model.fit(prepare(frame, schema), frame["churned"].map({0: "stays", 1: "leaves"}))
        if renamed_names:
            names = vars(model._label_encoder)
            renamed = {"".join(list(name)): value for name, value in names.items()}
            names.clear()
            names.update(renamed)
        blobs.append(dump_bundle(make_bundle(model, schema, "churned")))
    assert blobs[0] == blobs[1]


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
