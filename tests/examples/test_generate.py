"""The example data generator: determinism, shape, learnable labels, drift and faults."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

import keel.examples
from keel.errors import ExampleError
from keel.examples import DRIFT_KINDS, FAULT_KINDS, GeneratedData, generate

ROWS = 3000
SEED = 7
MIDPOINT = pd.Timestamp("2026-04-01")  # start of month 6 // 2 of the default period
DAY = pd.Timedelta(days=1)
REQUIRED = {
    "customers": ["customer_id", "signup_at", "plan", "region", "age", "monthly_charges"],
    "events": ["event_id", "customer_id", "event_time", "kind"],
}
COLUMNS = {
    "customers.csv": [
        "customer_id",
        "signup_at",
        "plan",
        "region",
        "age",
        "income",
        "monthly_charges",
        "updated_at",
    ],
    "events/events-2026-03.csv": ["event_id", "customer_id", "event_time", "kind", "amount"],
    "labels.csv": ["customer_id", "prediction_time", "churned", "label_time"],
    "hard_examples.csv": [
        "customer_id",
        "prediction_time",
        "signup_at",
        "plan",
        "region",
        "age",
        "income",
        "monthly_charges",
        "tenure_days",
        "tickets_30d",
        "logins_30d",
        "expected_churned",
    ],
}


@dataclass(frozen=True)
class Data:
    """The generated files, read back with every value as text (empty when missing)."""

    summary: GeneratedData
    customers: pd.DataFrame
    events: pd.DataFrame  # all months, with the file each row came from
    labels: pd.DataFrame
    hard: pd.DataFrame

    @property
    def event_files(self) -> list[pd.DataFrame]:
        return [group for _, group in self.events.groupby("file", sort=True)]


def _text(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _read(summary: GeneratedData) -> Data:
    data = summary.out / "data"
    files = sorted((data / "events").glob("events-*.csv"))
    events = pd.concat([_text(p).assign(file=p.name) for p in files], ignore_index=True)
    return Data(
        summary,
        _text(data / "customers.csv"),
        events,
        _text(data / "labels.csv"),
        _text(data / "hard_examples.csv"),
    )


def _make(tmp: Path, **options: object) -> Data:
    return _read(generate(tmp, rows=options.pop("rows", ROWS), seed=SEED, **options))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """The default data set, without drift or faults."""
    return _make(tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Data]:
    """The same data set with one kind of drift; each kind is generated once."""
    cache: dict[str, Data] = {}

    def make(kind: str) -> Data:
        if kind not in cache:
            cache[kind] = _make(tmp_path_factory.mktemp(kind), drift=[kind])
        return cache[kind]

    return make


def _digests(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _learning_table(data: Data) -> pd.DataFrame:
    """One row per label with features known at prediction time, computed from the files."""
    customers = data.customers.assign(
        signup_at=pd.to_datetime(data.customers["signup_at"]),
        monthly_charges=data.customers["monthly_charges"].astype(float),
    )
    labels = data.labels.assign(
        prediction_time=pd.to_datetime(data.labels["prediction_time"]),
        churned=data.labels["churned"].astype(int),
    )
    table = labels.merge(customers, on="customer_id")
    for kind in ("ticket", "login"):
        table[f"{kind}s_30d"] = _counts(data, labels, kind, days=-30)
    table["tenure_days"] = (table["prediction_time"] - table["signup_at"]).dt.days
    table["plan_code"] = table["plan"].map({"basic": 0, "standard": 1, "premium": 2})
    return table


def _counts(data: Data, labels: pd.DataFrame, kind: str, *, days: int) -> pd.Series:
    """Events of ``kind`` per label in the ``days`` before (< 0) or after prediction_time."""
    events = data.events[data.events["kind"] == kind]
    joined = events.merge(labels[["customer_id", "prediction_time"]], on="customer_id")
    offset = pd.to_datetime(joined["event_time"]) - joined["prediction_time"]
    low, high = sorted((pd.Timedelta(0), days * DAY))
    inside = joined[(offset >= low) & (offset < high)]
    counts = inside.groupby("customer_id").size()
    return labels["customer_id"].map(counts).fillna(0).astype(int).to_numpy()


FEATURES = ["tenure_days", "plan_code", "monthly_charges", "tickets_30d", "logins_30d"]


def _auc(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """Held-out ROC AUC of gradient boosting on the features known at prediction time."""
    model = HistGradientBoostingClassifier(random_state=0)
    with threadpool_limits(limits=1):  # OpenMP threads slow small fits down on busy machines
        model.fit(train[FEATURES].to_numpy(float), train["churned"])
        scores = model.predict_proba(test[FEATURES].to_numpy(float))[:, 1]
    return float(roc_auc_score(test["churned"], scores))


def _after_midpoint(data: Data, column: str = "updated_at") -> pd.Series:
    return pd.to_datetime(data.customers[column]) > MIDPOINT


# -- API and files ------------------------------------------------------------------------


def test_exported_names_are_the_public_api() -> None:
    """``keel.examples.__all__`` lists exactly the public names, and each one exists."""
    assert sorted(keel.examples.__all__) == [
        "DRIFT_KINDS",
        "FAULT_KINDS",
        "GeneratedData",
        "generate",
    ]
    assert all(hasattr(keel.examples, name) for name in keel.examples.__all__)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    """Two runs with the same arguments write byte-identical files."""
    options = {"rows": 300, "seed": 3, "drift": ["concept"], "faults": ["nulls"]}
    generate(tmp_path / "a", **options)  # type: ignore[arg-type]
    generate(tmp_path / "b", **options)  # type: ignore[arg-type]
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    """Another seed changes every file."""
    generate(tmp_path / "a", rows=300, seed=1)
    generate(tmp_path / "b", rows=300, seed=2)
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first)


def test_every_listed_file_exists(clean: Data) -> None:
    """``files`` names every file written, relative to ``out``, one event file per month."""
    files = clean.summary.files
    assert all(not path.is_absolute() and (clean.summary.out / path).is_file() for path in files)
    assert set(_digests(clean.summary.out)) == {str(path) for path in files}
    assert [p.name for p in files if p.parent.name == "events"] == [
        f"events-2026-{month:02d}.csv" for month in range(1, 7)
    ]


def test_row_counts_match_the_summary(clean: Data) -> None:
    """The summary's counts are the rows in the files."""
    summary = clean.summary
    assert (summary.customers, summary.events, summary.labels) == (
        len(clean.customers),
        len(clean.events),
        len(clean.labels),
    )
    assert summary.customers == ROWS


def test_summary_is_json_friendly(clean: Data) -> None:
    """``to_dict`` survives a JSON round trip with paths as strings."""
    summary = json.loads(json.dumps(clean.summary.to_dict()))
    assert summary["files"][0] == "data/customers.csv"
    assert summary["out"] == str(clean.summary.out)
    assert (summary["drift"], summary["faults"]) == ([], [])


@pytest.mark.parametrize(("name", "columns"), COLUMNS.items())
def test_columns_are_exactly_as_specified(clean: Data, name: str, columns: list[str]) -> None:
    """Each file has exactly the documented columns, in order."""
    header = (clean.summary.out / "data" / name).read_text().splitlines()[0]
    assert header.split(",") == columns


def test_values_are_formatted_as_documented(clean: Data) -> None:
    """Keys are zero-padded, timestamps are ``YYYY-MM-DD HH:MM:SS``, money has two decimals."""
    assert clean.customers["customer_id"].str.fullmatch(r"c_\d{6}").all()
    assert clean.events["event_id"].str.fullmatch(r"e_\d{9}").all()
    assert clean.events["event_time"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    assert clean.customers["income"].str.fullmatch(r"\d+\.\d\d").all()
    assert clean.events["amount"].str.fullmatch(r"-?\d+\.\d\d").all()


@pytest.mark.parametrize(
    ("start", "months", "names"),
    [
        (date(2026, 1, 31), 3, ["events-2026-01.csv", "events-2026-02.csv", "events-2026-03.csv"]),
        (date(2025, 12, 1), 1, ["events-2025-12.csv"]),
    ],
)
def test_any_start_and_length_of_period(
    tmp_path: Path, start: date, months: int, names: list[str]
) -> None:
    """Periods starting late in a month, or one month long, give one file per month."""
    data = _read(generate(tmp_path, rows=50, start=start, months=months))
    assert [p.name for p in data.summary.files if p.parent.name == "events"] == names
    assert (
        pd.to_datetime(data.labels["label_time"]) > pd.to_datetime(data.labels["prediction_time"])
    ).all()


# -- the clean data ------------------------------------------------------------------------


def test_customers_look_like_a_customer_base(clean: Data) -> None:
    """Plans and regions have the documented values and shares; ages are 18 to 90."""
    shares = clean.customers["plan"].value_counts(normalize=True)
    assert shares["basic"] == pytest.approx(0.5, abs=0.04)
    assert shares["premium"] == pytest.approx(0.15, abs=0.03)
    assert set(clean.customers["region"]) == {"north", "south", "east", "west"}
    assert clean.customers["age"].astype(int).between(18, 90).all()


def test_premium_plans_cost_more(clean: Data) -> None:
    """Monthly charges depend on the plan."""
    charges = clean.customers.assign(c=clean.customers["monthly_charges"].astype(float))
    means = charges.groupby("plan")["c"].mean()
    assert means["basic"] < means["standard"] < means["premium"]


def test_customer_times_fit_the_period(clean: Data) -> None:
    """Signups fall in the two years before the start; updates inside the period, after signup."""
    signup = pd.to_datetime(clean.customers["signup_at"])
    updated = pd.to_datetime(clean.customers["updated_at"])
    start = pd.Timestamp("2026-01-01")
    assert (signup >= start - 731 * DAY).all() and (signup < start).all()
    assert (updated >= start).all() and (updated < pd.Timestamp("2026-07-01")).all()
    assert (updated >= signup).all()


def test_events_fall_in_their_month_with_signed_amounts(clean: Data) -> None:
    """Each file holds its month; payments are positive, refunds negative, the rest zero."""
    month = pd.to_datetime(clean.events["event_time"]).dt.strftime("events-%Y-%m.csv")
    assert (month == clean.events["file"]).all()
    amount = clean.events["amount"].astype(float)
    kind = clean.events["kind"]
    assert (amount[kind == "payment"] > 0).all() and (amount[kind == "refund"] < 0).all()
    assert (amount[kind.isin(["login", "ticket"])] == 0).all()


def test_about_six_events_per_customer_per_month(clean: Data) -> None:
    """Event volume is realistic but modest."""
    assert 4 <= len(clean.events) / ROWS / 6 <= 8
    assert clean.events["event_id"].is_unique


def test_labels_arrive_thirty_days_after_the_prediction(clean: Data) -> None:
    """One label per customer, predicted at a month boundary, known 30 days later."""
    predicted = pd.to_datetime(clean.labels["prediction_time"])
    known = pd.to_datetime(clean.labels["label_time"])
    assert clean.labels["customer_id"].is_unique and len(clean.labels) == ROWS
    assert ((predicted.dt.day == 1) & (predicted.dt.hour == 0)).all()
    assert predicted.between(pd.Timestamp("2026-02-01"), pd.Timestamp("2026-06-01")).all()
    assert (known - predicted == 30 * DAY).all()


def test_churn_rate_is_realistic(clean: Data) -> None:
    """Between 15% and 30% of customers churn."""
    assert 0.15 <= clean.labels["churned"].astype(int).mean() <= 0.30


def test_label_is_learnable_from_features_known_at_prediction_time(clean: Data) -> None:
    """Gradient boosting on tenure, plan, charges and 30-day activity reaches AUC >= 0.7."""
    table = _learning_table(clean).sample(frac=1.0, random_state=0)
    train, test = table.iloc[: ROWS * 2 // 3], table.iloc[ROWS * 2 // 3 :]
    assert _auc(train, test) >= 0.7


# -- no leakage from the future ------------------------------------------------------------


def test_churned_customers_go_quiet_before_label_time(clean: Data) -> None:
    """A churned customer has no events after their label time."""
    last = clean.events.groupby("customer_id")["event_time"].max()
    labels = clean.labels.assign(last=clean.labels["customer_id"].map(last))
    churned = labels[labels["churned"] == "1"]
    assert len(churned) > 0 and (churned["last"] < churned["label_time"]).all()


def test_customers_who_stay_keep_producing_events(clean: Data) -> None:
    """Every customer not churned still has events after their label time, if any remain."""
    last = clean.events.groupby("customer_id")["event_time"].max()
    labels = clean.labels.assign(last=clean.labels["customer_id"].map(last))
    stayed = labels[(labels["churned"] == "0") & (labels["label_time"] < "2026-06-01")]
    assert (stayed["last"] > stayed["label_time"]).all()


def test_later_tickets_do_not_raise_churn_given_what_was_known(clean: Data) -> None:
    """Given the features at prediction time, tickets filed afterwards do not predict churn.

    Churn is drawn from tickets before the prediction time. Had it been drawn from tickets
    after it, later tickets would raise churn even with the earlier ones held fixed.
    """
    table = _learning_table(clean)
    later = _counts(clean, table, "ticket", days=30)
    earlier = pd.get_dummies(table["tickets_30d"].clip(upper=5), dtype=float).to_numpy()
    known = table[["tenure_days", "plan_code", "monthly_charges", "logins_30d"]].to_numpy(float)
    design = np.column_stack([earlier, known, later])
    coefficients, *_ = np.linalg.lstsq(design, table["churned"].to_numpy(float), rcond=None)
    assert coefficients[-1] < 0.01


def test_drift_after_the_midpoint_leaves_the_first_half_unchanged(
    tmp_path: Path, clean: Data
) -> None:
    """Changing what happens after the midpoint changes nothing written about before it."""
    changed = _make(tmp_path, drift=DRIFT_KINDS)
    for column, frame in (("updated_at", "customers"), ("prediction_time", "labels")):
        before, after = getattr(clean, frame), getattr(changed, frame)
        assert before[before[column] <= str(MIDPOINT)].equals(after[after[column] <= str(MIDPOINT)])
    events_before = [f"events-2026-0{month}.csv" for month in (1, 2, 3)]
    first_half = _digests(clean.summary.out / "data" / "events")
    assert {n: first_half[n] for n in events_before} == {
        n: _digests(changed.summary.out / "data" / "events")[n] for n in events_before
    }


# -- hard examples -------------------------------------------------------------------------


def test_hard_examples_agree_with_the_labels(clean: Data) -> None:
    """Hard examples are 20 to 50 labelled customers whose expected outcome is their label."""
    hard = clean.hard.merge(clean.labels, on=["customer_id", "prediction_time"])
    assert 20 <= len(clean.hard) <= 50 and len(hard) == len(clean.hard)
    assert (hard["expected_churned"] == hard["churned"]).all()
    assert set(hard["expected_churned"]) == {"0", "1"}


def test_hard_examples_features_match_the_data(clean: Data) -> None:
    """Their 30-day activity and tenure are what the event and customer files say."""
    table = _learning_table(clean).set_index("customer_id")
    hard = clean.hard.set_index("customer_id")
    for column in ("tickets_30d", "logins_30d", "tenure_days"):
        assert (hard[column].astype(int) == table.loc[hard.index, column]).all()


def test_hard_examples_are_clear_cut(clean: Data) -> None:
    """Expected churners have more tickets, fewer logins and shorter tenure than stayers."""
    numbers = clean.hard[["tickets_30d", "logins_30d", "tenure_days"]].astype(int)
    means = numbers.groupby(clean.hard["expected_churned"]).mean()
    assert means.loc["1", "tickets_30d"] > means.loc["0", "tickets_30d"] + 1
    assert means.loc["1", "logins_30d"] < means.loc["0", "logins_30d"]
    assert means.loc["1", "tenure_days"] < means.loc["0", "tenure_days"]


# -- drift ---------------------------------------------------------------------------------


def _charges_shift(data: Data) -> float:
    charges = data.customers["monthly_charges"].astype(float)
    after = _after_midpoint(data)
    return float((charges[after].mean() - charges[~after].mean()) / charges[~after].std())


def _central_share(data: Data) -> float:
    return float((data.customers["region"][_after_midpoint(data)] == "central").mean())


def _premium_share_change(data: Data) -> float:
    premium = data.customers["plan"] == "premium"
    after = _after_midpoint(data)
    return float(premium[after].mean() - premium[~after].mean())


def _ticket_effect_loss(data: Data) -> float:
    table = _learning_table(data)
    after = table["prediction_time"] > MIDPOINT
    correlation = [
        table[rows][["tickets_30d", "churned"]].corr().iloc[0, 1] for rows in (~after, after)
    ]
    return float(correlation[0] - correlation[1])


DRIFT_STATISTICS: dict[str, tuple[Callable[[Data], float], float, float]] = {
    # kind: (statistic comparing after with before the midpoint, clean at most, drifted above)
    "numeric_shift": (_charges_shift, 0.2, 1.0),
    "new_category": (_central_share, 0.0, 0.1),
    "category_share": (_premium_share_change, 0.05, 0.2),
    "concept": (_ticket_effect_loss, 0.15, 0.25),
}


def test_drift_statistics_cover_every_kind() -> None:
    """Every drift kind has a statistic below."""
    assert set(DRIFT_STATISTICS) == set(DRIFT_KINDS)


@pytest.mark.parametrize("kind", DRIFT_KINDS)
def test_clean_data_does_not_drift(clean: Data, kind: str) -> None:
    """Without drift, the second half looks like the first."""
    statistic, clean_at_most, _ = DRIFT_STATISTICS[kind]
    assert abs(statistic(clean)) <= clean_at_most


@pytest.mark.parametrize("kind", DRIFT_KINDS)
def test_drift_shows_after_the_midpoint(drifted: Callable[[str], Data], kind: str) -> None:
    """Each drift kind makes the second half differ from the first."""
    statistic, _, drifted_above = DRIFT_STATISTICS[kind]
    assert statistic(drifted(kind)) > drifted_above
    assert drifted(kind).summary.drift == (kind,)


def test_numeric_shift_moves_income_too(drifted: Callable[[str], Data]) -> None:
    """Income rises by more than one standard deviation after the midpoint."""
    data = drifted("numeric_shift")
    income, after = data.customers["income"].astype(float), _after_midpoint(data)
    assert income[after].mean() - income[~after].mean() > income[~after].std()


def test_new_region_never_appears_before_the_midpoint(drifted: Callable[[str], Data]) -> None:
    """``central`` is a category the first half has never seen."""
    data = drifted("new_category")
    assert not (data.customers["region"][~_after_midpoint(data)] == "central").any()


def test_concept_drift_keeps_the_features(clean: Data, drifted: Callable[[str], Data]) -> None:
    """Concept drift changes no customer record, only who churns after the midpoint."""
    data = drifted("concept")
    assert data.customers.equals(clean.customers)
    after = data.labels["prediction_time"] > str(MIDPOINT)
    assert data.labels[~after].equals(clean.labels[~after])
    assert not data.labels[after].equals(clean.labels[after])


def test_concept_drift_hurts_a_model_trained_before_it(drifted: Callable[[str], Data]) -> None:
    """A model trained on the first half loses AUC on the second half."""
    table = _learning_table(drifted("concept"))
    after = table["prediction_time"] > MIDPOINT
    train, holdout = table[~after].iloc[:1200], table[~after].iloc[1200:]
    assert _auc(train, holdout) - _auc(train, table[after]) > 0.08


# -- faults --------------------------------------------------------------------------------


def _is_number(values: pd.Series) -> pd.Series:
    return values.str.fullmatch(r"-?\d+(\.\d+)?")


def _nulls(data: Data) -> int:
    frames = {"customers": data.customers, "events": data.events}
    empty = [(frames[name][columns] == "").sum().sum() for name, columns in REQUIRED.items()]
    return int(sum(empty) + (data.events["amount"] == "").sum())


def _out_of_range(data: Data) -> int:
    ages = data.customers["age"][_is_number(data.customers["age"])].astype(float)
    charges = data.customers["monthly_charges"].astype(float)
    return int((~ages.between(18, 110)).sum() + (charges < 0).sum())


def _duplicate_keys(data: Data) -> int:
    return int(data.customers["customer_id"].duplicated().sum())


def _orphan_keys(data: Data) -> int:
    return int((~data.events["customer_id"].isin(data.customers["customer_id"])).sum())


def _out_of_order(data: Data) -> int:
    steps = [
        (f["event_time"].to_numpy()[1:] < f["event_time"].to_numpy()[:-1]).sum()
        for f in data.event_files
    ]
    return int(sum(steps))


def _type_change(data: Data) -> int:
    age = data.customers["age"]
    return int(((age != "") & ~_is_number(age)).sum())


def _dropped_column(data: Data) -> int:
    return len(set(COLUMNS["customers.csv"]) - set(data.customers.columns))


DETECTORS: dict[str, Callable[[Data], int]] = {
    "nulls": _nulls,
    "out_of_range": _out_of_range,
    "duplicate_keys": _duplicate_keys,
    "orphan_keys": _orphan_keys,
    "out_of_order": _out_of_order,
    "type_change": _type_change,
    "dropped_column": _dropped_column,
}
ROW_FAULTS = [kind for kind in FAULT_KINDS if kind != "dropped_column"]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Data]:
    """A small data set with one kind of fault; each kind is generated once."""
    cache: dict[str, Data] = {}

    def make(kind: str) -> Data:
        if kind not in cache:
            cache[kind] = _make(tmp_path_factory.mktemp(kind), rows=500, faults=[kind])
        return cache[kind]

    return make


def test_detectors_cover_every_fault_kind() -> None:
    """Every fault kind has a detector below."""
    assert set(DETECTORS) == set(FAULT_KINDS)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_clean_data_has_no_faults(clean: Data, kind: str) -> None:
    """Clean data passes every data-quality check."""
    assert DETECTORS[kind](clean) == 0


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_fault_is_detected(faulty: Callable[[str], Data], kind: str) -> None:
    """Each injected fault is caught by its check."""
    data = faulty(kind)
    assert DETECTORS[kind](data) >= 1
    assert data.summary.faults == (kind,)


@pytest.mark.parametrize("kind", ROW_FAULTS)
def test_fault_touches_a_few_percent_of_rows(faulty: Callable[[str], Data], kind: str) -> None:
    """A row fault affects at least one row and at most five percent of them."""
    data = faulty(kind)
    assert 1 <= DETECTORS[kind](data) <= 0.05 * (len(data.customers) + len(data.events))


def test_duplicate_keys_carry_different_values(faulty: Callable[[str], Data]) -> None:
    """Duplicated customers disagree with their original row, as a bad merge would."""
    customers = faulty("duplicate_keys").customers
    twins = customers[customers["customer_id"].duplicated(keep=False)]
    assert twins.groupby("customer_id")["monthly_charges"].nunique().eq(2).all()


def test_faults_leave_other_files_unchanged(faulty: Callable[[str], Data], tmp_path: Path) -> None:
    """Customer faults change customers.csv only; labels and hard examples are never faulted."""
    clean = generate(tmp_path, rows=500, seed=SEED)
    faulted = faulty("dropped_column").summary
    before, after = _digests(clean.out), _digests(faulted.out)
    assert {name for name in before if before[name] != after[name]} == {"data/customers.csv"}


# -- arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"drift": ["shfit"]},
            "unknown drift kind 'shfit': choose from numeric_shift, new_category, "
            "category_share, concept",
        ),
        ({"faults": ["nulls", "typo"]}, "unknown fault kind 'typo': choose from nulls,"),
        ({"rows": 9}, "rows is 9: choose a number of customers from 10 to 5,000,000"),
        ({"rows": 5_000_001}, "rows is 5000001: choose"),
        ({"rows": 12.5}, "rows is 12.5: choose"),
        ({"months": 0}, "months is 0: choose a number of months from 1 to 120"),
        ({"seed": -1}, "seed is -1: choose a non-negative integer"),
        ({"start": "2026-01-01"}, "start is '2026-01-01': choose a date"),
    ],
)
def test_bad_arguments_are_explained(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    """Bad arguments raise ExampleError: one sentence that says what to choose; nothing written."""
    with pytest.raises(ExampleError) as raised:
        generate(tmp_path / "out", **options)  # type: ignore[arg-type]
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_unwritable_output_is_explained(tmp_path: Path) -> None:
    """An output path that is a file gives an ExampleError naming it, not a traceback."""
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(ExampleError, match=r"cannot write .*taken.*: choose a folder"):
        generate(tmp_path / "taken", rows=10)


def test_kinds_are_reported_in_canonical_order(tmp_path: Path) -> None:
    """Kinds may be given in any order or repeated; the summary lists each once, in order."""
    summary = generate(
        tmp_path, rows=50, drift=["concept", "numeric_shift", "concept"], faults="nulls"
    )
    assert summary.drift == ("numeric_shift", "concept")
    assert summary.faults == ("nulls",)
