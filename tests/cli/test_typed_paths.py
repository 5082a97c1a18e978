"""A path typed on the command line is relative to the working directory, whatever
--project names; only the paths inside keel.yaml are relative to the project.

Each command runs as a user runs it (``python -m keel`` in a working directory that is not
the project), with a file of the same relative name in both folders holding different
rows, so reading the wrong one shows; every count is pandas' reading of the right one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from keel.project import Project
from tests.features.conftest import ingest, write_project
from tests.helpers import keel
from tests.serving.helpers import FEATURES, churn_frame, register_model


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """The working directory the commands run in: not the project, nor inside it."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def scoring(tmp_path: Path) -> Path:
    """A project with a production churn model and a folder data/batch of 50 rows."""
    root = tmp_path / "project"
    (root / "data" / "batch").mkdir(parents=True)
    (root / "keel.yaml").write_text("name: churn\n")
    with Project.open(root) as project:
        register_model(project, tmp_path)
    churn_frame(50, seed=1)[FEATURES].to_parquet(root / "data" / "batch" / "a.parquet")
    return root


def test_predict_reads_batch_and_writes_out_from_the_working_directory(
    scoring: Path, elsewhere: Path
) -> None:
    """``keel predict --batch data/batch --out scored.parquet --project P`` run elsewhere
    scores the working directory's data/batch (70 rows in two files, not the project's 50)
    and writes scored.parquet there."""
    batch = elsewhere / "data" / "batch"
    batch.mkdir(parents=True)
    churn_frame(40, seed=2)[FEATURES].to_parquet(batch / "a.parquet")
    churn_frame(30, seed=3)[FEATURES].to_parquet(batch / "b.parquet")
    done = keel(
        *("predict", "--batch", "data/batch", "--out", "scored.parquet", "--engine", "local"),
        *("--project", str(scoring), "--json"),
        cwd=elsewhere,
    )
    assert done.returncode == 0, done.stderr
    expected = sum(len(pd.read_parquet(f)) for f in sorted(batch.glob("*.parquet")))
    assert json.loads(done.stdout)["rows"] == expected == 70
    assert len(pd.read_parquet(elsewhere / "scored.parquet")) == expected
    assert not (scoring / "scored.parquet").exists()


def test_predict_of_a_declared_source_stays_a_source(scoring: Path, elsewhere: Path) -> None:
    """A --batch that names a declared source reads the source's keel.yaml path, relative
    to the project, from any working directory."""
    config = scoring / "keel.yaml"
    config.write_text(config.read_text() + "sources:\n  batch:\n    kind: parquet\n")
    config.write_text(config.read_text() + "    path: data/batch/\n")
    done = keel(
        *("predict", "--batch", "batch", "--out", "scored.parquet", "--engine", "local"),
        *("--project", str(scoring), "--json"),
        cwd=elsewhere,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == len(
        pd.read_parquet(scoring / "data" / "batch" / "a.parquet")
    )
    assert (elsewhere / "scored.parquet").is_file()


def test_a_missing_batch_path_is_one_sentence(scoring: Path, elsewhere: Path) -> None:
    """A --batch that matches nothing in the working directory (though the project has
    it) fails in one line naming where it looked."""
    done = keel(
        *("predict", "--batch", "data/batch", "--out", "scored.parquet", "--engine", "local"),
        *("--project", str(scoring)),
        cwd=elsewhere,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert str(elsewhere / "data" / "batch") in lines[0] and "no files match" in lines[0]


def test_build_training_set_reads_labels_and_writes_out_from_the_working_directory(
    tmp_path: Path, elsewhere: Path
) -> None:
    """``keel features build-training-set --labels labels.csv --out set.parquet --project
    P`` run elsewhere joins the working directory's three labels, not the project's one,
    and writes set.parquet there."""
    root = write_project(tmp_path / "features")
    ingest(root)
    labels = "customer_id,timestamp\nc1,2026-01-06 00:00:00\nc2,2026-01-03 00:00:00\n"
    (elsewhere / "labels.csv").write_text(labels + "c3,2026-01-04 00:00:00\n")
    (root / "labels.csv").write_text("customer_id,timestamp\nc1,2026-01-06 00:00:00\n")
    done = keel(
        *("features", "build-training-set", "--labels", "labels.csv", "--out", "set.parquet"),
        *("--project", str(root), "--json"),
        cwd=elsewhere,
    )
    assert done.returncode == 0, done.stderr
    written = pd.read_parquet(elsewhere / "set.parquet")
    expected = pd.read_csv(elsewhere / "labels.csv")
    assert json.loads(done.stdout)["rows"] == len(written) == len(expected) == 3
    assert written["customer_id"].tolist() == expected["customer_id"].tolist()
    assert not (root / "set.parquet").exists()


def test_data_infer_reads_the_sample_from_the_working_directory(
    tmp_path: Path, elsewhere: Path
) -> None:
    """``keel data infer sample.csv --project P`` run elsewhere proposes checks for the
    working directory's sample (columns order_id, amount), not the project's."""
    root = write_project(tmp_path / "features")
    pd.DataFrame({"order_id": [1, 2, 3], "amount": [9.5, 3.0, 7.25]}).to_csv(
        elsewhere / "sample.csv", index=False
    )
    pd.DataFrame({"other": ["x", "y"]}).to_csv(root / "sample.csv", index=False)
    done = keel("data", "infer", "sample.csv", "--project", str(root), "--json", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    columns = json.loads(done.stdout)["checks"]["columns"]
    assert set(columns) == set(pd.read_csv(elsewhere / "sample.csv").columns)


def test_validate_reads_data_from_the_working_directory(tmp_path: Path, elsewhere: Path) -> None:
    """``keel validate --source customers --data new.csv --project P`` run elsewhere
    checks the working directory's three rows, not the project's one."""
    root = write_project(tmp_path / "features")
    header = "customer_id,updated_at,plan,charges\n"
    rows = "c7,2026-01-01 00:00:00,basic,1.0\nc8,2026-01-01 00:00:00,basic,2.0\n"
    (elsewhere / "new.csv").write_text(header + rows + "c9,2026-01-01 00:00:00,basic,3.0\n")
    (root / "new.csv").write_text(header + "c1,2026-01-01 00:00:00,basic,1.0\n")
    done = keel(
        *("validate", "--source", "customers", "--data", "new.csv"),
        *("--project", str(root), "--json"),
        cwd=elsewhere,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == len(pd.read_csv(elsewhere / "new.csv")) == 3
