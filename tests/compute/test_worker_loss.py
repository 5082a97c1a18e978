"""A worker killed mid-job: Dask runs its partitions again on the other worker, and the
output, published once at the end, has every row exactly once."""

from __future__ import annotations

import signal
from pathlib import Path

import pandas as pd

from keel.compute.dask import DaskEngine
from keel.errors import ComputeError
from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.serving.batch_job import predict_batch
from tests.compute.conftest import Cluster, expected_inputs
from tests.compute.sleepy import SleepyModel
from tests.serving.helpers import fitted_model, register_model


def test_killing_a_worker_mid_job_loses_no_row(
    served_project: Path, cluster: Cluster, tmp_path: Path
) -> None:
    """SIGKILL one of three workers once the first partitions are in: the job still ends
    with every input row scored once (or, should Dask give up, with a ComputeError and
    no output at all); nothing is half-written."""
    config = served_project / "keel.yaml"
    config.write_text(config.read_text().replace("partition_rows: 100", "partition_rows: 25"))
    with Project.open(served_project) as project:
        register_model(project, tmp_path, model=SleepyModel(fitted_model()[0], 0.3))
    victim = cluster.add_worker()
    engine = DaskEngine.connect(cluster.address, 30)
    out = tmp_path / "out.parquet"

    def kill_after_two(done: int, _total: int) -> None:
        if done == 2 and victim.poll() is None:
            victim.send_signal(signal.SIGKILL)

    try:
        with Project.open(served_project) as project:
            predict_batch(project, "data/batch", out, engine, progress=kill_after_two)
            logged = PredictionLog.for_project(project).read()
    except ComputeError:
        assert not out.exists()
        return
    finally:
        engine.close()
    assert victim.wait(30) == -signal.SIGKILL
    written = pd.read_parquet(out)
    assert len(written) == len(expected_inputs(served_project))
    assert sorted(logged["prediction_id"]) == sorted(written["prediction_id"])
