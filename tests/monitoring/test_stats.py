"""The drift statistics as pure functions, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from keel.monitoring import stats


def test_ks_samples_matches_scipy_exact_for_small_windows() -> None:
    """A 40-value window gets scipy's exact two-sample p-value."""
    rng = np.random.default_rng(0)
    reference, window = rng.normal(0, 1, 300), rng.normal(0.5, 1, 40)
    expected = scipy_stats.ks_2samp(window, reference, method="exact")
    assert stats.ks_samples(reference, window) == pytest.approx(
        (expected.statistic, expected.pvalue)
    )


def test_ks_samples_matches_scipy_asymptotic_for_large_windows() -> None:
    """Large samples: the exact distance, and a p-value within 5% of scipy's asymptotic."""
    rng = np.random.default_rng(1)
    reference, window = rng.normal(0, 1, 4000), rng.normal(0.05, 1, 3000)
    expected = scipy_stats.ks_2samp(window, reference, method="asymp")
    distance, p_value = stats.ks_samples(reference, window)
    assert distance == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=0.05)


@pytest.mark.parametrize("shift", [0.3, -0.3])
@pytest.mark.parametrize(("reference_rows", "window_rows"), [(20_000, 500), (300, 5_000)])
def test_ks_distance_matches_scipy_with_ties_either_way(
    reference_rows: int, window_rows: int, shift: float
) -> None:
    """Tied values, a shift up or down, the window smaller or larger than the reference:
    the distance looked up at the smaller sample's points is scipy's exactly."""
    rng = np.random.default_rng(5)
    reference = np.round(rng.normal(0, 1, reference_rows), 3)
    window = np.round(rng.normal(shift, 1, window_rows), 2)
    expected = scipy_stats.ks_2samp(window, reference, method="asymp").statistic
    assert stats.ks_samples(reference, window)[0] == pytest.approx(expected, abs=1e-12)


def test_ks_on_bins_never_exceeds_the_raw_distance() -> None:
    """The binned KS distance is a lower bound of the raw one (so it errs toward no drift)."""
    rng = np.random.default_rng(2)
    reference, window = rng.normal(0, 1, 5000), rng.normal(0.3, 1, 2000)
    edges = np.quantile(reference, np.linspace(0, 1, 21))
    binned, _ = stats.ks_counts(
        np.histogram(reference, edges)[0],
        np.histogram(np.clip(window, edges[0], edges[-1]), edges)[0],
    )
    raw, _ = stats.ks_samples(reference, window)
    assert 0 < binned <= raw + 1e-12


def test_rare_categories_are_pooled_until_expected_counts_reach_five() -> None:
    """Columns with expected counts under five merge into one pooled column."""
    table = np.array([[500, 300, 40, 30], [50, 30, 3, 2]], dtype=float)
    pooled = stats.pool_rare(table)
    assert pooled.shape == (2, 3)
    assert list(pooled[:, -1]) == [70, 5]


def test_a_pool_still_too_small_absorbs_the_smallest_kept_column() -> None:
    """When the pooled column is still under five, the next-smallest column joins it."""
    table = np.array([[500, 300, 2, 1], [50, 30, 1, 0]], dtype=float)
    pooled = stats.pool_rare(table)
    assert pooled.tolist() == [[500, 303], [50, 31]]


def test_unseen_values_get_an_exact_p_value() -> None:
    """k values the reference never had: p is the hypergeometric chance all land in the window."""
    p = stats.unseen_test(reference_rows=900, window_rows=100, unseen=3)
    assert p == pytest.approx((100 * 99 * 98) / (1000 * 999 * 998))


def test_psi_of_a_known_shift() -> None:
    """PSI over two buckets 50/50 -> 60/40 is 0.1 * ln(1.2) - 0.1 * ln(0.8) = 0.1 * ln(1.5)."""
    assert stats.psi(np.array([50, 50]), np.array([60, 40])) == pytest.approx(0.1 * np.log(1.5))


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("bonferroni", [0.04, 0.08, 0.12, 0.16]),
        ("holm", [0.04, 0.06, 0.06, 0.06]),
        ("fdr", [0.04, 0.04, 0.04, 0.04]),
        ("none", [0.01, 0.02, 0.03, 0.04]),
    ],
)
def test_corrections_for_testing_many_columns(
    method: stats.Correction, expected: list[float]
) -> None:
    """Bonferroni, Holm and Benjamini-Hochberg adjust p-values as their definitions say."""
    adjusted = stats.adjust([0.01, 0.02, 0.03, 0.04], method)
    assert list(adjusted) == pytest.approx(expected)


def test_corrections_keep_the_input_order() -> None:
    """Adjusted p-values come back in the order the columns went in."""
    adjusted = stats.adjust([0.04, 0.01, 0.03], "holm")
    assert list(adjusted) == pytest.approx([0.06, 0.03, 0.06])


def test_mmd_sees_a_change_of_correlation_the_marginals_hide() -> None:
    """Two columns whose correlation flips: same marginals, MMD p-value small."""
    rng = np.random.default_rng(3)
    cov = np.array([[1, 0.9], [0.9, 1]])
    reference = rng.multivariate_normal([0, 0], cov, 200)
    window = rng.multivariate_normal([0, 0], cov * [[1, -1], [-1, 1]], 200)
    effect, p = stats.mmd_permutation(reference, window, permutations=200, seed=0)
    assert p < 0.01 and effect > 0


def test_mmd_p_value_is_not_small_without_a_shift() -> None:
    """Two samples of one distribution: the permutation p-value is unremarkable."""
    rng = np.random.default_rng(4)
    _, p = stats.mmd_permutation(
        rng.normal(size=(150, 3)), rng.normal(size=(150, 3)), permutations=200, seed=0
    )
    assert p > 0.05


def _textbook_kernel(reference: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The RBF kernel straight from its definition, over the full n x n x d differences,
    with the median pairwise squared distance as bandwidth."""
    pooled = np.vstack([reference, window])
    squared = np.sum((pooled[:, None, :] - pooled[None, :, :]) ** 2, axis=-1)
    bandwidth = np.median(squared[np.triu_indices_from(squared, k=1)])
    return np.exp(-squared / bandwidth)


def test_mmd_in_blocks_equals_the_textbook_statistic() -> None:
    """On a small sample the blocked kernel sums give the definition's MMD^2, and the
    p-value counts the same permutations (drawn with the same seed) as the definition."""
    rng = np.random.default_rng(5)
    reference, window = rng.normal(size=(700, 3)), rng.normal(0.2, 1, size=(600, 3))
    effect, p = stats.mmd_permutation(reference, window, permutations=50, seed=7)
    signs = np.where(np.arange(1300) < 700, 1 / 700, -1 / 600)
    draws = np.random.default_rng(7)
    kernel = _textbook_kernel(reference, window)
    null = [float(w @ kernel @ w) for w in (draws.permutation(signs) for _ in range(50))]
    observed = float(signs @ kernel @ signs)
    assert effect == pytest.approx(observed - np.mean(null), rel=1e-9, abs=1e-12)
    assert p == (1 + sum(value >= observed for value in null)) / 51


def test_mmd_memory_does_not_grow_with_rows_squared_times_columns() -> None:
    """6,000 pooled rows of 3 columns: the difference array alone would be 864 MB; the
    blocked statistic peaks far below that."""
    import tracemalloc

    rng = np.random.default_rng(6)
    reference, window = rng.normal(size=(3_000, 3)), rng.normal(size=(3_000, 3))
    tracemalloc.start()
    try:
        stats.mmd_permutation(reference, window, permutations=10, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 150 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_critical_effects_shrink_as_windows_grow() -> None:
    """The smallest significant KS distance and TVD fall as the window grows."""
    assert stats.ks_critical(5000, 5000, 0.01) < stats.ks_critical(5000, 50, 0.01)
    assert stats.tvd_critical(5000, 3, 0.01) < stats.tvd_critical(50, 3, 0.01)


def test_unseen_values_beyond_the_good_turing_share_get_a_binomial_p_value() -> None:
    """With an expected share of new values, the p-value is the binomial tail at it."""
    expected = scipy_stats.binom.sf(29, 1_000, 0.02)
    assert stats.unseen_test(50_000, 1_000, 30, expected_share=0.02) == pytest.approx(expected)
