"""``keel predict --batch``: the same rows on both engines, the same answers as a real
``keel serve``, every row in the prediction log, and bad input refused whole."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from keel.compute.dask import DaskEngine
from keel.compute.local import LocalEngine
from keel.errors import ComputeError, SourceError
from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.schema import ComputeConfig
from keel.serving.batch_job import predict_batch
from tests.compute.conftest import REPO, Cluster, expected_inputs
from tests.compute.sleepy import SleepyModel
from tests.helpers import free_port, keel
from tests.serving.helpers import create_key, fitted_model, register_model

JSON_FIELDS = ("findings", "errors", "interval", "features_missing")


def _score_local(root: Path, out: Path) -> pd.DataFrame:
    with Project.open(root) as project:
        predict_batch(project, "data/batch", out, LocalEngine())
    return pd.read_parquet(out)


def test_local_and_dask_engines_write_the_same_rows(
    served_project: Path, cluster: Cluster, tmp_path: Path
) -> None:
    """Scored on a real two-worker cluster, every row equals the local engine's row (all
    response fields but the random prediction id), in the input's order."""
    local = _score_local(served_project, tmp_path / "local.parquet")
    engine = DaskEngine.connect(cluster.address, 30)
    try:
        with Project.open(served_project) as project:
            predict_batch(project, "data/batch", tmp_path / "dask.parquet", engine)
    finally:
        engine.close()
    dask = pd.read_parquet(tmp_path / "dask.parquet")
    assert len(local) == len(expected_inputs(served_project))
    pd.testing.assert_frame_equal(
        local.drop(columns="prediction_id"), dask.drop(columns="prediction_id")
    )


def _serve(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    process.wait(30)
    raise AssertionError("keel serve did not become ready")


def _same(batch: Any, served: Any) -> bool:
    if isinstance(served, float) and isinstance(batch, float):
        return math.isclose(batch, served, rel_tol=1e-9, abs_tol=1e-12)
    return bool(batch == served)


def _batch_slot(row: pd.Series) -> dict[str, Any]:
    """An output row as the response slot it stands for: its non-null fields, JSON parsed."""
    slot = {k: v for k, v in row.items() if not (v is None or (isinstance(v, float) and v != v))}
    for name in JSON_FIELDS:
        if name in slot:
            slot[name] = json.loads(slot[name])
    return slot


def test_batch_rows_match_what_the_server_answers(served_project: Path, tmp_path: Path) -> None:
    """For the same rows, each batch output row carries exactly the fields, and values,
    that ``POST /v1/predict`` on a real ``keel serve`` answers (the id aside)."""
    batch = _score_local(served_project, tmp_path / "out.parquet")
    inputs = expected_inputs(served_project)
    instances = json.loads(inputs.to_json(orient="records"))
    with Project.open(served_project) as project:
        key = create_key(project)
    process, url = _serve(served_project)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        response = httpx.post(
            f"{url}/v1/predict", json={"instances": instances}, headers=headers, timeout=60
        )
    finally:
        process.terminate()
        process.wait(30)
    answered = response.json()["predictions"]
    assert len(answered) == len(batch)
    for (_, row), served in zip(batch.iterrows(), answered, strict=True):
        mine = _batch_slot(row)
        assert set(mine) <= set(served), served  # a null field is absent from the table
        differ = [k for k in served if k != "prediction_id" and not _same(mine.get(k), served[k])]
        assert not differ, (differ, mine, served)


def test_every_scored_row_is_in_the_prediction_log(served_project: Path, tmp_path: Path) -> None:
    """The log holds one record per output row (same prediction ids), routed ``batch``
    where the model answered."""
    out = _score_local(served_project, tmp_path / "out.parquet")
    with Project.open(served_project) as project:
        logged = PredictionLog.for_project(project).read()
    assert sorted(logged["prediction_id"]) == sorted(out["prediction_id"])
    by_model = out["fallback"].isna() & out["model_version"].notna()
    assert (logged["route"] == "batch").sum() == by_model.sum()


def test_a_corrupt_file_among_many_is_named_and_nothing_is_written(
    served_project: Path, tmp_path: Path
) -> None:
    """A Parquet file that is not Parquet stops the job with its name; no output file and
    no logged row appear."""
    bad = served_project / "data" / "batch" / "part-9.parquet"
    bad.write_bytes(b"PAR1 this is not really parquet")
    out = tmp_path / "out.parquet"
    with Project.open(served_project) as project:
        with pytest.raises(SourceError, match=r"part-9\.parquet"):
            predict_batch(project, "data/batch", out, LocalEngine())
        assert PredictionLog.for_project(project).read().empty
    assert not out.exists()


def test_cli_scores_on_the_cluster_and_reports_partitions(
    served_project: Path, cluster: Cluster, tmp_path: Path
) -> None:
    """``keel predict --batch --engine dask`` with $KEEL_DASK_ADDRESS answers with the
    row count and the partitions (files cut at compute.partition_rows)."""
    out = tmp_path / "scored.parquet"
    done = keel(
        *("predict", "--batch", "data/batch", "--out", str(out), "--engine", "dask", "--json"),
        cwd=served_project,
        env={"KEEL_DASK_ADDRESS": cluster.address},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    files = sorted((served_project / "data" / "batch").glob("*.parquet"))
    sizes = [len(pd.read_parquet(f)) for f in files]
    assert report["rows"] == sum(sizes) == len(pd.read_parquet(out))
    assert report["partitions"] == sum(math.ceil(n / 100) for n in sizes)


def test_a_scheduler_nobody_listens_on_is_one_sentence(served_project: Path) -> None:
    """``keel predict`` pointed at an address with no scheduler fails in one line that
    names the address."""
    address = f"tcp://127.0.0.1:{free_port()}"
    done = keel(
        *("predict", "--batch", "data/batch", "--out", "x.parquet", "--engine", "dask"),
        cwd=served_project,
        env={"KEEL_DASK_ADDRESS": address},
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1
    assert len(lines) == 1 and address in lines[0] and lines[0].startswith("error: ")
    assert not (served_project / "x.parquet").exists()


def test_connecting_to_no_scheduler_gives_up_within_10_s() -> None:
    """With the default compute.connect_timeout (5 s) the connection attempt ends, as a
    ComputeError, in under 10 s (the library is imported before the clock starts)."""
    address = f"tcp://127.0.0.1:{free_port()}"
    timeout = ComputeConfig().connect_timeout.total_seconds()
    started = time.monotonic()
    with pytest.raises(ComputeError, match="no Dask scheduler answered"):
        DaskEngine.connect(address, timeout)
    assert time.monotonic() - started < 10


def test_ctrl_c_cancels_with_nothing_written(served_project: Path, tmp_path: Path) -> None:
    """SIGINT once the first partition is scored: exit 130 with one line, no output
    file, no staging folder left, nothing in the prediction log."""
    config = served_project / "keel.yaml"
    config.write_text(config.read_text().replace("partition_rows: 100", "partition_rows: 25"))
    with Project.open(served_project) as project:
        register_model(project, tmp_path, model=SleepyModel(fitted_model()[0], 0.5))
    out = tmp_path / "out.parquet"
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "keel", "predict", "--batch", "data/batch"]
    process = subprocess.Popen(
        [*command, "--out", str(out), "--engine", "local"],
        cwd=served_project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    staging = served_project / ".keel" / "batch"
    deadline = time.monotonic() + 120
    while not any(staging.glob("*/parts/*.parquet")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1].startswith("cancelled:")
    assert not out.exists() and not any(staging.iterdir())
    with Project.open(served_project) as project:
        assert PredictionLog.for_project(project).read().empty
