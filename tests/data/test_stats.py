"""Statistics against a reference profile: thresholds that respect sample size."""

from __future__ import annotations

import numpy as np
import pandas as pd

from keel.data.batch import Batch
from keel.data.model import Profile
from keel.data.profiling import profile
from keel.data.stats import compare
from keel.schema import StatisticsCheck

SPEC = StatisticsCheck(max_row_change=0.5, max_cardinality_change=0.5)


def _profile(**columns: object) -> Profile:
    with Batch.from_frame(pd.DataFrame(columns)) as batch:
        return profile(batch)


def _failed(current: Profile, reference: Profile) -> set[str]:
    return {f.check for f in compare(current, reference, SPEC) if f.status == "fail"}


def test_same_distribution_passes() -> None:
    """Two samples of one distribution raise nothing."""
    rng = np.random.default_rng(0)
    assert _failed(_profile(x=rng.normal(size=5000)), _profile(x=rng.normal(size=5000))) == set()


def test_shifted_distribution_fails_psi_and_ks() -> None:
    """A one-sigma mean shift fails both PSI and KS."""
    rng = np.random.default_rng(1)
    current, reference = _profile(x=rng.normal(1, 1, 5000)), _profile(x=rng.normal(size=5000))
    assert _failed(current, reference) == {"stats:x.psi", "stats:x.ks"}


def test_small_samples_need_a_bigger_shift() -> None:
    """With 40 rows a modest shift stays within the sampling-noise limit."""
    rng = np.random.default_rng(2)
    current, reference = _profile(x=rng.normal(0.3, 1, 40)), _profile(x=rng.normal(size=40))
    assert "stats:x.ks" not in _failed(current, reference)


def test_tiny_samples_are_not_compared() -> None:
    """Under 30 rows the distribution finding is a skip, not a pass."""
    findings = compare(_profile(x=[1.0, 2.0]), _profile(x=[1.0, 2.0]), SPEC)
    assert [f.status for f in findings if f.kind == "distribution"] == ["skip"]


def test_schema_row_and_null_changes() -> None:
    """A dropped column, doubled rows and a jump in nulls are each named."""
    reference = _profile(a=[1.0] * 100, b=[1] * 100)
    current = _profile(a=[None] * 100 + [1.0] * 100)
    assert {"stats:schema", "stats:rows", "stats:a.null_rate"} <= _failed(current, reference)


def test_category_shares_shift() -> None:
    """Categories whose shares swap fail PSI."""
    reference = _profile(c=["a"] * 900 + ["b"] * 100)
    current = _profile(c=["a"] * 100 + ["b"] * 900)
    assert "stats:c.psi" in _failed(current, reference)


def test_cardinality_change_is_judged_on_text_not_floats() -> None:
    """Twice as many distinct ids fails; float columns carry no distinct estimate."""
    reference = _profile(id=[f"u{i % 50}" for i in range(1000)], x=[i / 7 for i in range(1000)])
    current = _profile(id=[f"u{i % 100}" for i in range(1000)], x=[i / 3 for i in range(1000)])
    failed = _failed(current, reference)
    assert "stats:id.cardinality" in failed
    assert "stats:x.cardinality" not in {f.check for f in compare(current, reference, SPEC)}
