"""Training on what `keel ingest` published: ``training.data: SOURCE`` and ``SOURCE@VERSION``.

Expected row counts are computed with pandas from the CSV files the tests write.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from keel.data.catalog import Catalog
from keel.data.ingestion import ingest
from keel.errors import ConfigError, TrainingDataError
from keel.project import Project
from keel.training import train
from keel.training.data import resolve_training_frame
from tests.helpers import keel
from tests.training.conftest import churn_frame

MakeProject = Callable[..., Project]
SOURCE = """\
sources:
  flights:
    kind: csv
    path: data/flights/*.csv
    key: customer_id
    timestamp: ts
"""
TRAINING = """\
training:
  data: {data}
  target: churned
  exclude: [customer_id]
  model:
    estimator: sklearn.ensemble.HistGradientBoostingClassifier
    params: {{max_iter: 10}}
  split: {{by: time, column: ts, test_size: 0.25}}
  seed: 7
"""


def _months() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two batches of a learnable table: the first 300 hours and the next 300."""
    frame = churn_frame(600, seed=3)
    return frame.iloc[:300].reset_index(drop=True), frame.iloc[300:].reset_index(drop=True)


def _publish(project: Project, name: str, frame: pd.DataFrame) -> str:
    """Drop one more file into the source's folder, ingest it, return the new version id."""
    folder = project.root / "data" / "flights"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / name, index=False)
    run = ingest(project, "flights")[0]
    assert run.status == "published", run.message
    assert run.version_id is not None
    return run.version_id


def _two_versions(make_project: MakeProject, data: str = "flights") -> tuple[Project, list[str]]:
    project = make_project(SOURCE + TRAINING.format(data=data))
    first, second = _months()
    return project, [_publish(project, "a.csv", first), _publish(project, "b.csv", second)]


def _frame(project: Project, spec: str) -> pd.DataFrame:
    return resolve_training_frame(project.root, spec).frame


def test_source_is_every_live_version(make_project: MakeProject) -> None:
    """``data: flights`` trains on both published batches together."""
    project, ids = _two_versions(make_project)
    first, second = _months()
    result = train(project)
    assert result.version.data_rows == len(pd.concat([first, second]))
    assert result.version.data_ref == f"flights@{ids[1][:12]}"


def test_source_at_version_stops_there(make_project: MakeProject) -> None:
    """``flights@<prefix of the first version>`` reads the first batch only, in its order."""
    project, ids = _two_versions(make_project)
    first, _ = _months()
    frame = _frame(project, f"flights@{ids[0][:8]}")
    assert frame["customer_id"].tolist() == first["customer_id"].tolist()


def test_retired_version_is_skipped(make_project: MakeProject, store_url: str) -> None:
    """Once the first version is retired, the source's data is the second batch alone."""
    project = make_project(SOURCE + TRAINING.format(data="flights"), store_url)
    first, second = _months()
    ids = [_publish(project, "a.csv", first), _publish(project, "b.csv", second)]
    Catalog(project.store).retire(ids[0], "exported twice")
    frame = _frame(project, "flights")
    assert frame["customer_id"].tolist() == second["customer_id"].tolist()


def test_at_retired_version_is_one_sentence(make_project: MakeProject) -> None:
    """Naming a retired version says so, with its reason and what to train on instead."""
    project, ids = _two_versions(make_project)
    Catalog(project.store).retire(ids[1], "exported twice")
    with pytest.raises(TrainingDataError, match=r"was retired \(exported twice\); pick a live"):
        _frame(project, f"flights@{ids[1][:10]}")


def test_unknown_version_is_one_sentence(make_project: MakeProject) -> None:
    """A version prefix that matches nothing names the version and `keel data list`."""
    project, _ = _two_versions(make_project)
    with pytest.raises(
        TrainingDataError,
        match=r"flights@zzzz, but 'flights' has no data version starting with 'zzzz'; pick "
        r"one from `keel data list --source flights`",
    ):
        _frame(project, "flights@zzzz")


def test_short_version_prefix_asks_for_more(make_project: MakeProject) -> None:
    """Fewer than 4 characters of a version id is refused, as `keel data` refuses it."""
    project, ids = _two_versions(make_project)
    with pytest.raises(TrainingDataError, match="give at least 4 characters of a version id"):
        _frame(project, f"flights@{ids[0][:3]}")


def test_another_sources_version_is_unknown(make_project: MakeProject) -> None:
    """A version of a different source is not a version of this one."""
    body = SOURCE + "  other:\n    kind: csv\n    path: data/train.csv\n"
    project = make_project(body + TRAINING.format(data="flights"))
    other = ingest(project, "other")[0].version_id
    assert other is not None
    _publish(project, "a.csv", _months()[0])
    with pytest.raises(TrainingDataError, match="'flights' has no data version starting with"):
        _frame(project, f"flights@{other[:8]}")


def test_training_file_naming_no_source(make_project: MakeProject) -> None:
    """A training config from elsewhere (``keel train --config``) naming no source is refused."""
    project, _ = _two_versions(make_project)
    config = project.config.training
    assert config is not None
    with pytest.raises(TrainingDataError, match=r"'fligths', which is not a source .*flights"):
        train(project, config.model_copy(update={"data": "fligths"}))


def test_source_without_versions_says_ingest_first(make_project: MakeProject) -> None:
    """A declared source that was never ingested: one sentence saying to run keel ingest."""
    project = make_project(SOURCE + TRAINING.format(data="flights"))
    with pytest.raises(TrainingDataError, match=r"run `keel ingest --source flights` first$"):
        train(project)


def test_target_absent_from_the_source(make_project: MakeProject) -> None:
    """A target the source's columns lack is named, with the columns it does have."""
    project, _ = _two_versions(make_project)
    config = project.config.training
    assert config is not None
    with pytest.raises(TrainingDataError, match="has no target column 'retained'; columns are"):
        train(project, config.model_copy(update={"target": "retained"}))


def test_latest_is_the_only_source(make_project: MakeProject) -> None:
    """``latest`` with one declared source reads that source."""
    project, _ = _two_versions(make_project, data="latest")
    first, second = _months()
    assert len(_frame(project, "latest")) == len(first) + len(second)


def test_latest_with_two_sources_names_them(make_project: MakeProject) -> None:
    """``latest`` is ambiguous with two sources: the error lists them."""
    body = SOURCE + "  other:\n    kind: csv\n    path: data/train.csv\n"
    project = make_project(body + TRAINING.format(data="latest"))
    with pytest.raises(TrainingDataError, match=r"declares 2 sources \(flights, other\); set"):
        train(project)


def test_config_check_warns_when_latest_is_ambiguous(make_project: MakeProject) -> None:
    """`keel config check` passes but warns that ``latest`` cannot choose between sources."""
    body = SOURCE + "  other:\n    kind: csv\n    path: data/train.csv\n"
    project = make_project(body + TRAINING.format(data="latest"))
    result = keel("config", "check", "--project", str(project.root))
    assert result.returncode == 0, result.stderr
    assert "training.data is 'latest' but there are 2 sources (flights, other)" in result.stdout


def test_latest_without_sources_says_to_declare_one(make_project: MakeProject) -> None:
    """``latest`` in a project with no sources says to declare one or name a file."""
    project = make_project(TRAINING.format(data="latest"))
    with pytest.raises(TrainingDataError, match="declares no sources; declare one and run"):
        train(project)


def test_unknown_source_is_a_config_error(make_project: MakeProject, tmp_path: Path) -> None:
    """A training.data naming no declared source fails loading, at its line in keel.yaml."""
    with pytest.raises(
        ConfigError, match=r"keel\.yaml:9:\d+: training\.data: names 'flight', which"
    ):
        make_project(SOURCE + TRAINING.format(data="flight@abcd"))


def test_config_check_rejects_an_unknown_source(make_project: MakeProject) -> None:
    """`keel config check` exits 1 with the one sentence and no traceback."""
    project = make_project(SOURCE + TRAINING.format(data="flights"))
    text = (project.root / "keel.yaml").read_text().replace("data: flights", "data: flihgts")
    (project.root / "keel.yaml").write_text(text)
    result = keel("config", "check", "--project", str(project.root))
    assert result.returncode == 1
    assert "training.data: names 'flihgts', which is not a source in keel.yaml" in result.stderr
    assert "(sources: flights)" in result.stderr and "Traceback" not in result.stderr


def test_cli_trains_on_a_source(make_project: MakeProject) -> None:
    """`keel train --json` on a source reports the rows of both versions and the ref."""
    import json

    project, ids = _two_versions(make_project)
    first, second = _months()
    result = keel("train", "--json", "--project", str(project.root))
    assert result.returncode == 0, result.stderr
    version = json.loads(result.stdout)["version"]
    assert version["data_rows"] == len(first) + len(second)
    assert version["data_ref"] == f"flights@{ids[1][:12]}"


def test_same_versions_give_the_same_model(make_project: MakeProject) -> None:
    """Two runs on the same published versions read the rows in one order: same artifact."""
    project, _ = _two_versions(make_project)
    first, second = train(project).version, train(project).version
    assert first.artifact == second.artifact
    assert first.data_ref == second.data_ref
