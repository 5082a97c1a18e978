"""`keel init DIR --from TABLE`: a working project around a team's own table, or one sentence."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from keel.errors import ProjectError, SourceError, TrainingDataError
from keel.project import Project
from keel.scaffold import init_from_table
from keel.schema import SourceConfig

from .delivery.helpers import replicas
from .helpers import keel
from .serving.helpers import auth


def churn_table(rows: int = 400, seed: int = 3) -> pd.DataFrame:
    """Real-shaped customers: string labels that depend on the features, and nulls."""
    rng = np.random.default_rng(seed)
    charges = rng.normal(70, 20, rows).round(2)
    plan = rng.choice(["basic", "standard", "premium"], rows)
    risk = (charges - 70) / 10 + (plan == "basic") * 1.5 - 1
    income = rng.lognormal(10, 0.5, rows).round(0)
    income[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "customer_id": [f"c_{i:05d}" for i in range(rows)],
            "plan": plan,
            "monthly_charges": charges,
            "income": income,
            "city": [f"city_{i}" for i in rng.integers(0, 1000, rows)],
            "notes": [None] * rows,
            "updated_at": pd.date_range("2026-01-01", periods=rows, freq="h").astype(str),
            "churned": np.where(rng.random(rows) < 1 / (1 + np.exp(-risk)), "left", "stayed"),
        }
    )


def table_file(tmp_path: Path, frame: pd.DataFrame, name: str = "customers.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def init(tmp_path: Path, frame: pd.DataFrame, **options: object) -> Path:
    """init_from_table on ``frame`` written as CSV, into tmp_path/project."""
    options = {"target": "churned", "keys": ["customer_id"], "time": "updated_at", **options}
    init_from_table(tmp_path / "project", str(table_file(tmp_path, frame)), **options)  # type: ignore[arg-type]
    return tmp_path / "project"


def test_project_loads_with_the_declared_source(tmp_path: Path) -> None:
    """The written keel.yaml validates; its source has the key, time and inferred checks."""
    root = init(tmp_path, churn_table())
    with Project.open(root) as project:
        source = project.config.sources["customers"]
        training = project.config.training
        assert project.loaded.warnings == ()
    assert (source.key, source.timestamp, source.path) == (
        "customer_id",
        "updated_at",
        "data/customers.csv",
    )
    assert source.checks.columns["plan"].allowed == ["basic", "premium", "standard"]
    assert training is not None and training.data == "customers"


def test_training_section_follows_the_table(tmp_path: Path) -> None:
    """The key, time, entirely-null and 1,000-category columns are left out of the features."""
    table = churn_table()
    root = init(tmp_path, table)
    with Project.open(root) as project:
        training, serving = project.config.training, project.config.serving
        monitoring = project.config.monitoring
    assert training is not None and serving is not None and monitoring is not None
    assert table["city"].nunique() > 255
    assert set(training.exclude) == {"customer_id", "updated_at", "notes", "city"}
    assert training.model.estimator == "sklearn.ensemble.HistGradientBoostingClassifier"
    assert (training.split.by, training.split.column) == ("time", "updated_at")
    assert serving.entity == "customer_id" and monitoring.reference == "model:production"


def test_a_second_date_column_is_left_out_with_a_note(tmp_path: Path) -> None:
    """A date column besides --time is not a feature (the model took each date as a category,
    so every later date was refused at serving); the note says why."""
    table = churn_table().assign(
        signup_at=pd.date_range("2025-01-01", periods=400, freq="D").strftime("%Y-%m-%d")
    )
    path = table_file(tmp_path, table)
    args = ["--from", str(path), "--target", "churned", "--time", "updated_at", "--json"]
    notes = json.loads(keel("init", str(tmp_path / "p"), *args).stdout)["notes"]
    with Project.open(tmp_path / "p") as project:
        training = project.config.training
    assert training is not None and "signup_at" in training.exclude
    assert [n for n in notes if "'signup_at'" in n and "dates" in n] != []


def test_copies_the_table_into_the_project(tmp_path: Path) -> None:
    """The project holds its own byte-identical copy of the table."""
    root = init(tmp_path, churn_table())
    original = (tmp_path / "customers.csv").read_bytes()
    assert (root / "data" / "customers.csv").read_bytes() == original


def test_three_string_classes_make_a_classifier(tmp_path: Path) -> None:
    """A string target with three classes is a multiclass classification project."""
    table = churn_table().assign(churned=lambda f: np.resize(["left", "stayed", "paused"], len(f)))
    root = init(tmp_path, table)
    with Project.open(root) as project:
        training = project.config.training
    assert training is not None and training.model.estimator is not None
    assert training.model.estimator.endswith("Classifier")


def test_numeric_target_makes_a_regressor(tmp_path: Path) -> None:
    """A continuous target gets a regressor and a gate on r2 (better than the mean)."""
    root = init(tmp_path, churn_table(), target="monthly_charges")
    with Project.open(root) as project:
        training, gate = project.config.training, project.config.gate
    assert training is not None and gate is not None
    assert training.model.estimator == "sklearn.ensemble.HistGradientBoostingRegressor"
    assert gate.thresholds == {"r2": "> 0"}


@pytest.mark.parametrize(
    ("change", "target", "error", "words"),
    [
        ({}, "cancelled", ProjectError, "'cancelled'"),
        ({"churned": "stayed"}, "churned", TrainingDataError, "one class"),
        ({"churned": None}, "churned", TrainingDataError, "entirely null"),
        ({}, "city", TrainingDataError, "'city'"),
    ],
    ids=["missing", "one-class", "all-null", "id-like"],
)
def test_unusable_target_is_refused(
    tmp_path: Path, change: dict[str, object], target: str, error: type[Exception], words: str
) -> None:
    """A missing, single-class, empty or id-like target is refused, and no folder is made."""
    with pytest.raises(error, match=words):
        init(tmp_path, churn_table().assign(**change), target=target)
    assert not (tmp_path / "project").exists()


def test_time_column_with_mixed_zones_and_garbage_is_refused(tmp_path: Path) -> None:
    """Mixed time zones and unparsable values in --time are one error naming it."""
    table = churn_table()
    table.loc[3, "updated_at"] = "2026-01-01T05:00:00+02:00"
    table.loc[9, "updated_at"] = "n/a yet"
    with pytest.raises(SourceError, match="'updated_at'"):
        init(tmp_path, table)


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    """A Parquet file that is not Parquet is one sentence saying what to pass."""
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(SourceError, match=r"broken\.parquet.*pass a Parquet file"):
        init_from_table(tmp_path / "project", str(path), target="churned")


def test_folder_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    """A folder with files in it is left as it was."""
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "mine.txt").write_text("keep me")
    with pytest.raises(ProjectError, match="not empty"):
        init(tmp_path, churn_table())
    assert [p.name for p in (tmp_path / "project").iterdir()] == ["mine.txt"]


def test_duplicate_keys_are_quarantined_on_ingest(tmp_path: Path) -> None:
    """init works on a key with duplicates; `keel ingest` then flags them with the unique check."""
    table = churn_table()
    table.loc[7, "customer_id"] = table.loc[6, "customer_id"]
    root = init(tmp_path, table)
    done = keel("ingest", "--json", "--project", str(root))
    run = json.loads(done.stdout)["runs"][0]
    failed = [f["check"] for f in run["report"]["findings"] if f["status"] == "fail"]
    assert run["status"] == "quarantined" and failed == ["customer_id.unique"]


def test_positive_is_written_as_the_positive_class(tmp_path: Path) -> None:
    """--positive becomes training.positive_class."""
    root = init(tmp_path, churn_table(), positive="left")
    with Project.open(root) as project:
        assert project.config.training is not None
        assert project.config.training.positive_class == "left"


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (["left", "stayed"], r"--positive 'gone' is not a value of the target 'churned'"),
        (["left", "stayed", "paused"], r"'churned' has 3 distinct values; leave --positive out"),
    ],
)
def test_positive_that_is_no_class_is_refused(
    tmp_path: Path, classes: list[str], message: str
) -> None:
    """A --positive label the target does not hold, or a target with three classes, is one
    sentence, not a silent default."""
    table = churn_table().assign(churned=lambda f: np.resize(classes, len(f)))
    positive = "gone" if len(classes) == 2 else "left"
    with pytest.raises((ProjectError, TrainingDataError), match=message):
        init(tmp_path, table, positive=positive)


def test_cli_names_the_missing_target_in_one_line(tmp_path: Path) -> None:
    """The real command prints one sentence naming the column and exits 1."""
    path = table_file(tmp_path, churn_table())
    done = keel("init", str(tmp_path / "p"), "--from", str(path), "--target", "cancelled")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "'cancelled'" in done.stderr


def test_cli_reports_the_columns_left_out(tmp_path: Path) -> None:
    """The real command's --json names the entirely-null and the 1,000-category column."""
    path = table_file(tmp_path, churn_table())
    args = ["--from", str(path), "--target", "churned", "--key", "customer_id", "--json"]
    done = keel("init", str(tmp_path / "p"), *args)
    notes = json.loads(done.stdout)["notes"]
    assert [n for n in notes if "'notes'" in n] != [] and [n for n in notes if "'city'" in n] != []


def test_sql_table_is_referenced_and_ingested(tmp_path: Path) -> None:
    """A SQL URL with --query becomes a sql source that `keel ingest` publishes."""
    import sqlalchemy as sa

    table = churn_table(rows=200)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    table.to_sql("customers", sa.create_engine(url), index=False)
    query = "SELECT * FROM customers"
    options = {"target": "churned", "keys": ["customer_id"], "query": query}
    init_from_table(tmp_path / "project", url, **options)  # type: ignore[arg-type]
    with Project.open(tmp_path / "project") as project:
        source = project.config.sources["table"]
    assert (source.kind, source.url, source.query) == ("sql", url, query)
    done = keel("ingest", "--json", "--project", str(tmp_path / "project"))
    run = json.loads(done.stdout)["runs"][0]
    assert (run["status"], run["rows"]) == ("published", len(table))


def test_init_ingest_train_deploy_latest_serve(tmp_path: Path) -> None:
    """The README's path with real processes: init --from, ingest, train, deploy latest, serve."""
    table = churn_table(rows=600)
    path = table_file(tmp_path, table)
    root = tmp_path / "my-project"
    args = ["--target", "churned", "--key", "customer_id", "--time", "updated_at"]
    assert keel("init", str(root), "--from", str(path), *args).returncode == 0
    for step in (["ingest"], ["train"], ["deploy", "latest"]):
        done = keel(*step, "--project", str(root))
        assert done.returncode == 0, (step, done.stdout, done.stderr)
    made = keel("keys", "create", "--name", "app", "--scope", "predict", "--json", "-p", str(root))
    key = json.loads(made.stdout)["key"]
    row = table.iloc[0][["customer_id", "plan", "monthly_charges", "income"]].to_dict()
    whole = {k: v for k, v in table.iloc[1].drop("churned").items() if v == v}  # no NaN
    with replicas(root, 1) as (http,):
        answer = _predict(http, key, row)
        as_in_the_table = http.post("/v1/predict", json={"instance": whole}, headers=auth(key))
        unknown = {**row, "colour": "red"}
        refused = http.post("/v1/predict", json={"instance": unknown}, headers=auth(key))
    assert answer["model_version"] == "my-project@1"
    assert answer["label"] in set(table["churned"]) and answer["fallback"] is None
    # a row copied from the table, with the columns init left out (time, ids, the wide
    # text column), is answered; a field the table never had is still refused
    assert as_in_the_table.status_code == 200, as_in_the_table.text
    assert refused.status_code == 422 and "colour" in refused.text


def _predict(http: httpx.Client, key: str, row: dict[str, object]) -> dict[str, object]:
    """One prediction from a server that may still be starting (up to 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            response = http.post("/v1/predict", json={"instances": [row]}, headers=auth(key))
            if response.status_code == 200:
                found: dict[str, object] = response.json()["predictions"][0]
                return found
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not answer within 60 s"
        time.sleep(0.2)


def test_parquet_table_is_copied_and_ingested(tmp_path: Path) -> None:
    """A Parquet table becomes a parquet source that `keel ingest` publishes whole."""
    import duckdb

    table, path = churn_table(rows=200), tmp_path / "customers.parquet"
    with duckdb.connect() as connection:
        connection.register("t", table)
        connection.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    init_from_table(tmp_path / "project", str(path), target="churned", keys=["customer_id"])
    with Project.open(tmp_path / "project") as project:
        assert project.config.sources["customers"].kind == "parquet"
    done = keel("ingest", "--json", "--project", str(tmp_path / "project"))
    run = json.loads(done.stdout)["runs"][0]
    assert (run["status"], run["rows"]) == ("published", len(table))


def test_init_help_names_the_table_options() -> None:
    """`keel init --help` documents --from, --target, --key, --time, --positive and --json."""
    from typer.testing import CliRunner

    from keel.cli.main import app

    done = CliRunner().invoke(app, ["init", "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0
    for option in ("--from", "--target", "--key", "--time", "--positive", "--query", "--json"):
        assert option in done.stdout


def test_target_without_from_is_refused(tmp_path: Path) -> None:
    """`keel init DIR --target X` without --from is one sentence, and makes no example."""
    done = keel("init", str(tmp_path / "p"), "--target", "churned")
    assert done.returncode == 1 and "--from" in done.stderr
    assert not (tmp_path / "p" / "keel.yaml").exists()


@pytest.mark.skipif(
    "list" in str(SourceConfig.model_fields["key"].annotation), reason="sources take several keys"
)
def readings_table(stations: int = 30, hours: int = 20) -> pd.DataFrame:
    """Readings keyed by station and hour together: neither column alone is unique."""
    table = churn_table(rows=stations * hours).drop(columns="customer_id")
    hour = pd.date_range("2026-01-01", periods=hours, freq="h").astype(str)
    return table.assign(
        station=[f"s_{i % stations:02d}" for i in range(len(table))],
        updated_at=[hour[i // stations] for i in range(len(table))],
    )


def test_two_keys_are_written_as_a_composite_key(tmp_path: Path) -> None:
    """Two --key columns become key: [station, updated_at], each not_null, neither unique."""
    table = readings_table()
    root = init(tmp_path, table, keys=["station", "updated_at"])
    with Project.open(root) as project:
        source = project.config.sources["customers"]
    columns = source.checks.columns
    assert table["station"].duplicated().any() and table["updated_at"].duplicated().any()
    assert source.key == ["station", "updated_at"] and source.keys == ("station", "updated_at")
    assert columns["station"].not_null and columns["updated_at"].not_null
    assert not columns["station"].unique and not columns["updated_at"].unique


def test_init_with_two_keys_ingests_and_trains(tmp_path: Path) -> None:
    """Real processes: init --from with --key twice, then ingest publishes every row with the
    composite unique check passing, and train succeeds."""
    table = readings_table()
    path = table_file(tmp_path, table, "readings.csv")
    root = tmp_path / "readings"
    args = ["--target", "churned", "--key", "station", "--key", "updated_at"]
    made = keel("init", str(root), "--from", str(path), *args, "--time", "updated_at")
    assert made.returncode == 0, made.stderr
    done = keel("ingest", "--json", "--project", str(root))
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["runs"][0]
    unique = [f for f in run["report"]["findings"] if f["check"] == "station+updated_at.unique"]
    assert (run["status"], run["rows"]) == ("published", len(table))
    assert unique[0]["status"] == "pass"
    trained = keel("train", "--project", str(root))
    assert trained.returncode == 0, (trained.stdout, trained.stderr)


def test_a_repeated_composite_key_is_quarantined_on_ingest(tmp_path: Path) -> None:
    """A table repeating a (station, hour) pair: `keel ingest` flags the composite unique
    check, counting the repeats as pandas does."""
    table = readings_table()
    table.loc[5, ["station", "updated_at"]] = table.loc[4, ["station", "updated_at"]].to_numpy()
    root = init(tmp_path, table, keys=["station", "updated_at"])
    done = keel("ingest", "--json", "--project", str(root))
    run = json.loads(done.stdout)["runs"][0]
    failed = [f for f in run["report"]["findings"] if f["status"] == "fail"]
    repeats = int(table.duplicated(subset=["station", "updated_at"]).sum())
    assert run["status"] == "quarantined" and [f["check"] for f in failed] == [
        "station+updated_at.unique"
    ]
    assert failed[0]["violations"] == repeats == 1
