"""Drift sees every column type: flags, zero-inflated amounts and long-tailed categories.

The seeded targets: a flag's share 0.16 -> 0.5 and a zero-inflated amount losing a fifth
of its zeros are found at 500 rows in at least 95% of seeded windows; an unshifted
200-category column says "no drift" at 2,000 rows in at least 95%; and unshifted
windows raise a false alarm in at most 5% of seeds at every size tested.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from keel.monitoring.drift import compare, compare_frame
from keel.monitoring.reference import Reference
from keel.monitoring.sketch import Bins

CITIES = [f"city{i:03d}" for i in range(200)]
CITY_SHARES = 1.0 / np.arange(1, 201) ** 0.8 / (1.0 / np.arange(1, 201) ** 0.8).sum()


def table(rows: int, seed: int, *, flag: float = 0.16, zeros: float = 0.75) -> pd.DataFrame:
    """A flag, a mostly-zero amount (precipitation), a 200-category column with a long
    tail (destination airport) and a continuous column (temperature)."""
    rng = np.random.default_rng(seed)
    rain = np.where(rng.random(rows) < zeros, 0.0, rng.gamma(0.7, 4.0, rows))
    return pd.DataFrame(
        {
            "holiday": (rng.random(rows) < flag).astype(np.int64),
            "precipitation": np.round(rain, 1),
            "destination": rng.choice(CITIES, rows, p=CITY_SHARES).astype(object),
            "temperature": rng.normal(15, 8, rows),
        }
    )


@pytest.fixture(scope="module")
def reference() -> Reference:
    """Reference statistics of 20,000 unshifted rows."""
    return Reference.from_frame(table(20_000, seed=10_000))


def test_a_flag_gets_a_bucket_for_each_value() -> None:
    """A 0/1 column keeps its two values apart instead of folding into one decile bin."""
    bins = Bins.numeric(np.array([0.0] * 84 + [1.0] * 16), 10)
    buckets = np.bincount(bins.index(np.array([0.0, 0.0, 1.0])), minlength=bins.size)
    assert buckets[bins.point_buckets()].tolist() == [2, 1]


def test_the_zeros_of_a_mostly_zero_column_get_a_bucket_of_their_own() -> None:
    """Precipitation: the zeros sit alone in one bucket; the rain has quantile bins."""
    values = table(5_000, seed=1)["precipitation"].to_numpy()
    bins = Bins.numeric(values, 100)
    counts = np.bincount(bins.index(values), minlength=bins.size)
    zero_bucket = int(np.flatnonzero(bins.point_buckets())[0])
    assert bins.labels()[zero_bucket] == "= 0"
    assert counts[zero_bucket] == int((values == 0).sum())


def test_three_flags_set_for_300_rows_are_found(reference: Reference) -> None:
    """The reported case: three flags forced to 1 in 300 of 2,000 rows drift (each
    flag's share rises by about 0.13), and the chi-square over values matches scipy's."""
    frame = table(2_000, seed=3)
    frame = frame.assign(**{f"flag{i}": frame["holiday"] for i in range(3)})
    ref_frame = table(20_000, seed=10_000)
    ref_frame = ref_frame.assign(**{f"flag{i}": ref_frame["holiday"] for i in range(3)})
    ref = Reference.from_frame(ref_frame)
    frame.loc[:299, ["flag0", "flag1", "flag2"]] = 1
    report = compare_frame(ref, frame)
    assert {"flag0", "flag1", "flag2"} <= set(report.drifted)
    counts = [np.bincount(f["flag0"], minlength=2) for f in (ref_frame, frame)]
    expected = stats.chi2_contingency(np.vstack(counts), correction=False)
    assert report.column("flag0").statistic == pytest.approx(expected.statistic)


def test_a_zero_inflated_window_keeps_the_ks_distance_scipy_measures(
    reference: Reference,
) -> None:
    """On a small window the zero-inflated column's KS distance is scipy's, ties and all."""
    window = table(500, seed=4, zeros=0.55)
    drift = compare_frame(reference, window).column("precipitation")
    expected = stats.ks_2samp(window["precipitation"], reference.sample["precipitation"])
    assert drift.statistic == pytest.approx(expected.statistic)


@pytest.mark.parametrize(
    ("column", "shift"), [("holiday", {"flag": 0.5}), ("precipitation", {"zeros": 0.55})]
)
def test_a_planted_shift_is_found_at_500_rows_in_95_percent_of_seeds(
    reference: Reference, column: str, shift: dict[str, float]
) -> None:
    """Flag share 0.16 -> 0.5, or zeros 75% -> 55%: drift in at least 95 of 100 windows,
    judged from the window's sketch alone, as a monitor judges a sketched window."""
    layout = reference.layout
    found = [
        column in compare(reference, layout.sketch(table(500, s, **shift))).drifted
        for s in range(100)
    ]
    assert sum(found) >= 95


def test_an_unshifted_200_category_column_says_no_drift_at_2000_rows(
    reference: Reference,
) -> None:
    """Pooling the long tail lets 2,000 rows see the configured effect: the column says
    "no drift" (not "insufficient data") in at least 95 of 100 seeded windows."""
    decisions = [
        compare_frame(reference, table(2_000, s)).column("destination").decision for s in range(100)
    ]
    assert decisions.count("no_drift") >= 95


@pytest.mark.parametrize("rows", [100, 500, 2_000])
def test_false_alarms_stay_under_five_percent_at_every_size(
    reference: Reference, rows: int
) -> None:
    """Over 100 unshifted windows of each size, at most 5 flag any column."""
    alarms = [bool(compare_frame(reference, table(rows, s)).drifted) for s in range(100)]
    assert sum(alarms) <= 5


def test_a_moved_long_tail_category_is_still_found(reference: Reference) -> None:
    """Pooling keeps the common categories apart: the top destination losing half its
    share (about 0.05 of all rows going to the tail) is found at 2,000 rows."""
    frame = table(2_000, seed=7)
    top = frame.index[frame["destination"] == CITIES[0]]
    frame.loc[top[: len(top) // 2], "destination"] = CITIES[-1]
    assert "destination" in compare_frame(reference, frame).drifted


def test_a_ten_thousand_category_column_does_not_alarm_on_unseen_values() -> None:
    """A 12,000-category column (more than a reference keeps names of) tests its common
    categories and pools the rest: values missing from the reference are not "unseen",
    so an unshifted window's test is not significant in at least 19 of 20 seeds, and its
    effect stays under the gate in all."""
    rng = np.random.default_rng(0)
    names = np.array([f"id{i}" for i in range(12_000)], dtype=object)
    reference = Reference.from_frame({"account": rng.choice(names, 30_000)}, columns=["account"])
    layout = reference.layout
    columns = [
        compare(reference, layout.sketch({"account": rng.choice(names, 2_000)})).columns[0]
        for _ in range(20)
    ]
    assert sum(c.p_value > 0.01 for c in columns) >= 19
    assert all(c.effect < c.min_effect for c in columns)


def test_the_zero_bucket_is_named_by_its_value(reference: Reference) -> None:
    """What moved names the zeros ``= 0`` with their shares, as pandas counts them."""
    window = table(2_000, seed=8, zeros=0.5)
    moved = {m.bucket: m for m in compare_frame(reference, window).column("precipitation").moved}
    zeros = table(20_000, seed=10_000)["precipitation"].eq(0).mean()
    assert moved["= 0"].reference == pytest.approx(zeros)
    assert moved["= 0"].window == pytest.approx(window["precipitation"].eq(0).mean())


def test_a_small_continuous_reference_is_not_taken_for_a_discrete_one() -> None:
    """40 distinct reference values of a continuous column are not 40 categories: the
    column keeps its KS test, and a window from the same distribution does not drift."""
    rng = np.random.default_rng(0)
    reference = Reference.from_frame({"x": rng.normal(0, 1, 40)})
    drift = compare_frame(reference, {"x": rng.normal(0, 1, 2_000)}).column("x")
    assert drift.test == "ks"
    assert drift.decision != "drift"


@pytest.fixture(scope="module")
def accounts() -> tuple[Reference, np.ndarray]:
    """10,000 account ids, 30,000 reference rows: about 5% of the ids never appear, and
    every reference name is kept (the known-value limit)."""
    rng = np.random.default_rng(0)
    names = np.array([f"id{i}" for i in range(10_000)], dtype=object)
    reference = Reference.from_frame({"account": rng.choice(names, 30_000)}, columns=["account"])
    return reference, names


def test_a_long_tails_new_values_are_expected_not_drift(
    accounts: tuple[Reference, np.ndarray],
) -> None:
    """The ids the reference happened to miss show up in every window (about 5% of its
    rows); by Good-Turing they are expected, so an unshifted window is not significant in
    at least 19 of 20 seeds."""
    reference, names = accounts
    rng = np.random.default_rng(1)
    p_values = [
        compare(reference, reference.layout.sketch({"account": rng.choice(names, 2_000)}))
        .columns[0]
        .p_value
        for _ in range(20)
    ]
    assert sum(p > 0.01 for p in p_values) >= 19


def test_a_flood_of_new_ids_in_a_long_tail_still_drifts(
    accounts: tuple[Reference, np.ndarray],
) -> None:
    """10% of a window's rows carrying ids nobody has seen is drift."""
    reference, names = accounts
    rng = np.random.default_rng(2)
    new = np.array([f"new{i}" for i in range(200)], dtype=object)
    window = np.concatenate([rng.choice(names, 1_800), new])
    assert compare(reference, reference.layout.sketch({"account": window})).drifted == ["account"]
