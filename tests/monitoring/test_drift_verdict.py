"""The window's verdict: small shifts shown apart, untestable columns listed apart, a
per-column effect gate, and alerts that name the drifted columns."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from keel.monitoring.alerts import DEFAULT_RULES, AlertBook, drift_signals
from keel.monitoring.drift import compare_frame
from keel.monitoring.reference import Reference
from keel.monitoring.results import DriftSettings
from keel.monitoring.wiring import drift_settings
from keel.schema import DriftSpec
from keel.store.metadata import MetadataStore


def weather(rows: int, seed: int, humidity_shift: float = 0.0) -> pd.DataFrame:
    """Hourly weather: humidity (%), temperature and a condition."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "humidity": np.clip(rng.normal(70 + humidity_shift, 15, rows), 0, 100),
            "temperature": rng.normal(12, 7, rows),
            "condition": rng.choice(["clear", "cloudy", "rain"], rows, p=[0.5, 0.3, 0.2]),
        }
    )


@pytest.fixture(scope="module")
def reference() -> Reference:
    """Reference statistics of 20,000 hours."""
    return Reference.from_frame(weather(20_000, seed=1))


@pytest.fixture(scope="module")
def humid() -> pd.DataFrame:
    """10,000 hours whose humidity moved by +3 points (a fifth of a standard deviation)."""
    return weather(10_000, seed=2, humidity_shift=3.0)


def test_a_clear_shift_under_the_gate_is_a_small_shift(
    reference: Reference, humid: pd.DataFrame
) -> None:
    """The humidity case: a KS distance near 0.08 with a tiny p is a small shift, shown
    apart, and the window's verdict stays "no drift"."""
    report = compare_frame(reference, humid)
    expected = stats.ks_2samp(humid["humidity"], reference.sample["humidity"])
    column = report.column("humidity")
    assert column.statistic == pytest.approx(expected.statistic)
    assert expected.statistic < 0.1 and expected.pvalue < 1e-6
    assert column.decision == "small_shift"
    assert report.small_shifts == ["humidity"]
    assert report.decision == "no_drift"


def test_the_effect_gate_is_set_per_column_in_keel_yaml(
    reference: Reference, humid: pd.DataFrame
) -> None:
    """``column_min_effect: {humidity: 0.05}`` makes the same shift drift, and only there."""
    settings = drift_settings(DriftSpec(column_min_effect={"humidity": 0.05}))
    report = compare_frame(reference, humid, settings)
    assert report.drifted == ["humidity"]
    assert report.column("temperature").min_effect == 0.1


def test_a_column_all_null_in_the_window_is_listed_apart(reference: Reference) -> None:
    """Every testable column passes, one is null throughout: "no drift", and the null
    column is listed as untestable."""
    window = weather(2_000, seed=3).assign(temperature=np.nan)
    report = compare_frame(reference, window)
    assert report.untestable == ["temperature"]
    assert report.decision == "no_drift"
    assert report.to_dict()["untestable"] == ["temperature"]


def test_a_window_with_nothing_testable_is_not_enough_data(reference: Reference) -> None:
    """When no column could be tested the window cannot say "no drift"."""
    window = pd.DataFrame({"humidity": [np.nan] * 50, "temperature": [np.nan] * 50})
    assert compare_frame(reference, window).decision == "insufficient_data"


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    """A migrated metadata store on each backend."""
    opened = MetadataStore.open(store_url)
    yield opened
    opened.close()


def test_the_feature_drift_alert_names_columns_statistic_and_effect(
    store: MetadataStore, reference: Reference
) -> None:
    """The alert's summary names the drifted column with its test, statistic and effect
    against the gate (KS distance as scipy measures it)."""
    window = weather(2_000, seed=4, humidity_shift=15.0)
    report = compare_frame(reference, window, DriftSettings())
    distance = stats.ks_2samp(window["humidity"], reference.sample["humidity"]).statistic
    book = AlertBook(store)
    assert book.observe(DEFAULT_RULES[0], drift_signals(report), now=0.0) == "open"
    summary = book.list("open")[0].summary
    assert f"humidity (ks {distance:.3g}" in summary
    assert f"ks_distance {distance:.3g} >= 0.1" in summary
    assert "temperature" not in summary
