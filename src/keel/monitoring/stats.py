"""The drift statistics as pure functions: no I/O, no clock, seeded randomness only.

Each test returns its statistic and p-value; each effect size has a ``*_critical``
companion giving the smallest effect a window of that size could declare significant at
a given level, which is how a window too small to see the configured effect is told
apart from a window with no drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special  # scipy.stats (about 1 s to import) only where it is used

__all__ = [
    "Correction",
    "adjust",
    "categorical_test",
    "chi2_pooled",
    "effective_n",
    "kept_categories",
    "ks_counts",
    "ks_critical",
    "ks_samples",
    "mmd_permutation",
    "pool_rare",
    "psi",
    "psi_critical",
    "psi_groups",
    "psi_test",
    "tvd",
    "tvd_critical",
    "unseen_test",
]

Floats = npt.NDArray[np.float64]
Correction = Literal["holm", "bonferroni", "fdr", "none"]
_EPS = 1e-4  # share given to an empty bucket so PSI stays finite


def effective_n(n: int, m: int) -> float:
    """The two-sample size ``n*m/(n+m)`` that sets the noise of a comparison."""
    return n * m / (n + m) if n and m else 0.0


def _shares(counts: np.ndarray) -> Floats:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


# -- Kolmogorov-Smirnov -----------------------------------------------------------------


EXACT_KS_PAIRS = 1_000_000


def ks_samples(reference: np.ndarray, window: np.ndarray) -> tuple[float, float]:
    """Two-sample KS on raw values. The p-value is exact (scipy) for small samples, where
    ``len(reference) * len(window)`` is at most a million, else asymptotic (the
    one-sample distribution at n_eff, as scipy's ``asymp``). ``reference`` may be passed
    already sorted; it is not copied then."""
    if reference.size * window.size <= EXACT_KS_PAIRS:
        from scipy import stats

        result = stats.ks_2samp(window, reference, method="exact")
        return float(result.statistic), float(result.pvalue)
    ref = reference if _is_sorted(reference) else np.sort(reference)
    win = np.sort(window)
    small, large = (win, ref) if win.size <= ref.size else (ref, win)
    distance = _ks_distance(small, large)
    return distance, ks_pvalue(distance, effective_n(ref.size, win.size))


def ks_pvalue(distance: float, n_eff: float) -> float:
    """Asymptotic two-sided KS p-value with Stephens' small-sample correction."""
    if n_eff <= 0:
        return 1.0
    root = np.sqrt(n_eff)
    return float(np.clip(special.kolmogorov((root + 0.12 + 0.11 / root) * distance), 0, 1))


def _is_sorted(values: np.ndarray) -> bool:
    return bool(values.size < 2 or (values[1:] >= values[:-1]).all())


def _ks_distance(small: np.ndarray, large: np.ndarray) -> float:
    """The largest gap between two sorted samples' ECDFs, looked up at ``small``'s points.

    Between two neighbouring points of ``small`` its ECDF is flat and the other's only
    rises, so the gap peaks at an end: at a point (right limits) or just before the
    next one (left limits). Looking up only the smaller sample's points, not every
    reference value, keeps a 500-row window against 20,000 values cheap.
    """
    gaps = [
        np.searchsorted(large, small, side) / large.size
        - np.searchsorted(small, small, side) / small.size
        for side in ("left", "right")
    ]
    return float(max(np.abs(gap).max() for gap in gaps))


def ks_counts(reference: np.ndarray, window: np.ndarray) -> tuple[float, float]:
    """KS on two histograms over the same ordered bins (asymptotic p-value).

    The distance is taken at bin edges only, so it never exceeds the raw distance and
    the p-value errs on the side of "no drift".
    """
    gap = np.abs(np.cumsum(_shares(reference)) - np.cumsum(_shares(window)))
    distance = float(gap.max()) if gap.size else 0.0
    return distance, ks_pvalue(distance, effective_n(int(reference.sum()), int(window.sum())))


def ks_critical(n: int, m: int, alpha: float) -> float:
    """The smallest KS distance significant at ``alpha`` (asymptotic)."""
    n_eff = effective_n(n, m)
    return float(special.kolmogi(alpha) / np.sqrt(n_eff)) if n_eff else float("inf")


# -- categories -------------------------------------------------------------------------


def pool_rare(table: np.ndarray, min_expected: float = 5.0) -> np.ndarray:
    """Merge the columns of a 2 x K table whose expected counts fall below ``min_expected``."""
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return table
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    rare = expected.min(axis=0) < min_expected
    kept, pooled = table[:, ~rare], table[:, rare].sum(axis=1, keepdims=True)
    while rare.any() and kept.shape[1] and _min_expected(pooled, table) < min_expected:
        smallest = int(np.argmin(kept.sum(axis=0)))
        pooled = pooled + kept[:, [smallest]]
        kept = np.delete(kept, smallest, axis=1)
    return np.hstack([kept, pooled]) if rare.any() else kept


def _min_expected(column: np.ndarray, table: np.ndarray) -> float:
    return float((table.sum(axis=1) * column.sum() / table.sum()).min())


def chi2_pooled(reference: np.ndarray, window: np.ndarray) -> tuple[float, float, int]:
    """Chi-square test of homogeneity with rare categories pooled: statistic, p, df."""
    table = pool_rare(np.vstack([reference, window]).astype(np.float64))
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return statistic, float(special.chdtrc(dof, statistic)), dof


def unseen_test(
    reference_rows: int, window_rows: int, unseen: int, expected_share: float = 0.0
) -> float:
    """One-sided p-value for ``unseen`` window values the reference never had.

    With ``expected_share`` (Good-Turing's estimate of the values a new sample brings
    that the reference never saw: its singletons over its rows), a binomial test of that
    many. Without it, Fisher's exact test: under no drift, each of the ``unseen`` values
    was as likely to land in the reference as in the window; the chance that all of
    them landed in the window is hypergeometric.
    """
    if unseen == 0:
        return 1.0
    from scipy import stats

    if expected_share > 0:
        return float(stats.binom.sf(unseen - 1, window_rows, expected_share))
    total = reference_rows + window_rows
    return float(stats.hypergeom.sf(unseen - 1, total, unseen, window_rows))


def categorical_test(
    reference: np.ndarray, window: np.ndarray, unseen: int, unseen_share: float = 0.0
) -> tuple[float, float, int]:
    """Chi-square over the buckets, with the last (``unseen``) bucket never pooled away.

    The known buckets get the usual chi-square with rare ones pooled. The unseen bucket
    adds one degree of freedom whose contribution is the exact (Fisher) p-value turned
    back into a chi-square(1) quantile, because its expected count is usually tiny and
    the chi-square approximation would be meaningless there.

    Pearson's statistic is kept over the alternatives because none sees more: on a
    share moving 0.40 -> 0.30 in four categories at 500 rows, the G-test, one test
    per category and one per pair of categories (Bonferroni inside the column) found it
    in 41-42 of 50 seeded windows, chi-square in 41. Pooling costs nothing there: it
    only merges buckets the window expects fewer than five rows in.
    """
    statistic, _, df = chi2_pooled(reference[:-1], window[:-1])
    if unseen:
        p_unseen = unseen_test(int(reference.sum()), int(window.sum()), unseen, unseen_share)
        statistic += float(special.chdtri(1, max(p_unseen, 1e-300)))
        df += 1
    return statistic, float(special.chdtrc(df, statistic)) if df else 1.0, df


def tvd(reference: np.ndarray, window: np.ndarray) -> float:
    """Total variation distance: the share of rows that would have to change bucket."""
    return float(0.5 * np.abs(_shares(reference) - _shares(window)).sum())


def tvd_critical(n_eff: float, df: int, alpha: float) -> float:
    """The smallest TVD a chi-square test of ``df`` degrees can call significant.

    Worst case over shifts: mass moving between two buckets that together hold all rows.
    """
    if n_eff <= 0:
        return float("inf")
    return float(np.sqrt(special.chdtri(max(df, 1), alpha) / (4 * n_eff)))


def kept_categories(n_eff: float, alpha: float, min_effect: float, categories: int) -> int:
    """How many of the reference's most common categories to test on their own, the rest
    pooled into one bucket: the most whose chi-square (``k`` degrees) can still see a
    total variation of ``min_effect`` at this window size, and all of them if none can.

    Every category costs a degree of freedom and adds sampling noise to the total
    variation, so a 200-category column in a 2,000-row window could never show
    ``min_effect``; pooling its long tail lets a normal window say "no drift". The
    choice depends on the window's size only, never on its counts.
    """
    for kept in range(categories, 0, -1):
        if tvd_critical(n_eff, kept, alpha) <= min_effect:
            return kept
    return categories


# -- population stability index ---------------------------------------------------------


def psi_groups(reference: np.ndarray, groups: int = 10) -> npt.NDArray[np.int64]:
    """Group fine numeric buckets into ``groups`` reference-quantile bins.

    The underflow and overflow buckets (first and last) stay groups of their own.
    """
    inner = reference[1:-1].astype(np.float64)
    start = np.concatenate([[0.0], np.cumsum(inner)[:-1]]) / max(inner.sum(), 1.0)
    group = np.minimum(np.floor(start * groups + 1e-9), groups - 1).astype(np.int64) + 1
    return np.concatenate([[0], group, [groups + 1]]).astype(np.int64)


def psi(reference: np.ndarray, window: np.ndarray) -> float:
    """Population stability index, empty buckets given a share of 1e-4."""
    expected = np.maximum(_shares(reference), _EPS)
    actual = np.maximum(_shares(window), _EPS)
    return float(((actual - expected) * np.log(actual / expected)).sum())


def psi_test(reference: np.ndarray, window: np.ndarray) -> tuple[float, float]:
    """PSI and its p-value: ``n_eff * PSI`` is about chi-square with buckets-1 degrees."""
    used = (reference + window) > 0
    value = psi(reference[used], window[used])
    n_eff = effective_n(int(reference.sum()), int(window.sum()))
    df = max(int(used.sum()) - 1, 1)
    return value, float(special.chdtrc(df, n_eff * value)) if n_eff else 1.0


def psi_critical(n_eff: float, buckets: int, alpha: float) -> float:
    """The smallest PSI significant at ``alpha``."""
    if n_eff <= 0:
        return float("inf")
    return float(special.chdtri(max(buckets - 1, 1), alpha) / n_eff)


# -- maximum mean discrepancy -----------------------------------------------------------


def mmd_permutation(
    reference: np.ndarray, window: np.ndarray, *, permutations: int, seed: int
) -> tuple[float, float]:
    """RBF-kernel MMD^2 (bias-corrected by the permutation mean) and permutation p-value.

    Rows are samples, columns standardised features; the bandwidth is the median
    pairwise distance. Every permutation is scored at once, one block of kernel rows at
    a time, so memory grows with rows x block, never rows x rows x columns.
    """
    rng = np.random.default_rng(seed)
    pooled = np.vstack([reference, window]).astype(np.float64, copy=False)
    n, total = len(reference), len(pooled)
    signs = np.where(np.arange(total) < n, 1.0 / n, -1.0 / (total - n))
    shuffled = np.stack([rng.permutation(signs) for _ in range(permutations)], axis=1)
    weights = np.column_stack([signs, shuffled])
    bandwidth = _median_distance(pooled, rng)
    sums = np.zeros_like(weights)
    for start in range(0, total, _KERNEL_BLOCK):
        rows = slice(start, start + _KERNEL_BLOCK)
        sums[rows] = np.exp(-_squared_distances(pooled[rows], pooled) / bandwidth) @ weights
    quadratic = np.einsum("ip,ip->p", weights, sums)
    observed, null = float(quadratic[0]), quadratic[1:]
    p_value = (1 + int((null >= observed).sum())) / (1 + permutations)
    return observed - float(null.mean()), p_value


_KERNEL_BLOCK = 512  # kernel rows held at once: 512 x 10,000 pooled rows is 40 MB
_BANDWIDTH_ROWS = 2_048  # the median distance is exact up to this many pooled rows


def _squared_distances(rows: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances from each of ``rows`` to every pooled row."""
    cross = rows @ pooled.T
    squared = np.sum(rows**2, axis=1)[:, None] + np.sum(pooled**2, axis=1)[None, :] - 2 * cross
    clipped: np.ndarray = np.maximum(squared, 0.0)
    return clipped


def _median_distance(pooled: np.ndarray, rng: np.random.Generator) -> float:
    """The median squared distance over distinct pairs: exact on small samples, over a
    seeded subset of rows on large ones (the kernel's scale, not a test statistic)."""
    if len(pooled) > _BANDWIDTH_ROWS:
        pooled = pooled[rng.choice(len(pooled), _BANDWIDTH_ROWS, replace=False)]
    squared = _squared_distances(pooled, pooled)
    return float(np.median(squared[np.triu_indices_from(squared, k=1)])) or 1.0


# -- multiple testing -------------------------------------------------------------------


def adjust(p_values: Sequence[float], method: Correction) -> Floats:
    """P-values adjusted for testing many columns at once (family-wise or FDR)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p)
    if method == "holm":
        stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    else:  # Benjamini-Hochberg
        stepped = np.minimum.accumulate(m / np.arange(m, 0, -1) * p[order][::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted
