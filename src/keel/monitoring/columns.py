"""One column's drift test, chosen by what the column holds.

A categorical column gets chi-square over its categories (the long tail pooled when the
window is too small to judge every category); a numeric column whose reference values
all sit in buckets of one value (a flag, a count) gets chi-square over its values; any
other numeric column KS (or PSI) on its bins, or on raw values when the window has them.
Pure functions over a reference and a window's sketch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from keel.monitoring import stats
from keel.monitoring.reference import Reference
from keel.monitoring.results import ColumnDrift, DriftSettings, Moved, TestName
from keel.monitoring.sketch import Bins, ColumnSketch, column_values

__all__ = ["OUTPUT_PREFIX", "SCORES", "column_drift", "role_of"]

OUTPUT_PREFIX = "output"
SCORES = ("confidence", "score")  # logged beside the output: how sure, and the raw score


def role_of(column: str) -> str:
    """Model outputs (``output``, ``output.*``, ``confidence``, ``score``) versus input
    features."""
    is_output = column in SCORES or column.split(".", 1)[0] == OUTPUT_PREFIX
    return "output" if is_output else "feature"


def column_drift(
    name: str,
    reference: Reference,
    window: ColumnSketch,
    settings: DriftSettings,
    raw: Mapping[str, np.ndarray] | None,
    alpha: float,
) -> ColumnDrift:
    bins = reference.layout.columns[name]
    ref = reference.sketch.columns[name]
    base = {
        "column": name,
        "role": role_of(name),
        "rows": window.rows,
        "reference_rows": ref.rows,
        "nulls": window.nulls,
        "reference_nulls": ref.nulls,
    }
    if window.counts.sum() == 0 or ref.counts.sum() == 0:
        return _empty(base, bins, settings)
    if bins.kind == "categorical":
        tells_unseen = bool(reference.layout.known.get(name))
        singletons = reference.singletons.get(name, 0) if tells_unseen else 0
        expected = _good_turing(ref, singletons)
        return _categorical(base, bins, ref, window, settings, alpha, expected)
    if _discrete(bins, ref) and _numeric_test(settings) == "ks":
        return _values(base, bins, ref, window, settings, alpha)
    values = raw.get(name) if raw is not None else None
    return _numeric(base, reference, name, ref, window, settings, alpha, values)


def _empty(base: dict[str, Any], bins: Bins, settings: DriftSettings) -> ColumnDrift:
    test: TestName = "chi2" if bins.kind == "categorical" else _numeric_test(settings)
    return ColumnDrift(
        **base,
        test=test,
        statistic=0.0,
        p_value=1.0,
        effect=0.0,
        effect_name=_EFFECT_NAMES[test],
        min_effect=settings.effect_gate(test, base["column"]),
        critical_effect=float("inf"),
        note=_empty_note(base),
        decision="untestable",
    )


def _empty_note(base: dict[str, Any]) -> str:
    if base["reference_rows"] == base["reference_nulls"]:
        return "the reference has no values in this column"
    return "every value in the window is null" if base["rows"] else "the window is empty"


_EFFECT_NAMES = {"ks": "ks_distance", "chi2": "total_variation", "psi": "psi", "mmd": "mmd2"}


def _numeric_test(settings: DriftSettings) -> TestName:
    return "ks" if "ks" in settings.tests else "psi"


def _categorical(
    base: dict[str, Any],
    bins: Bins,
    ref: ColumnSketch,
    window: ColumnSketch,
    settings: DriftSettings,
    alpha: float,
    expected: np.ndarray,
) -> ColumnDrift:
    unseen = int(window.counts[-1])
    n_eff = stats.effective_n(int(ref.counts.sum()), int(window.counts.sum()))
    gate = settings.effect_gate("chi2", base["column"])
    kept = stats.kept_categories(n_eff, alpha, gate, len(bins.categories))
    labels, ref_counts, win_counts = _pool_tail(bins, expected, window.counts, kept)
    share = float(expected[-1] / max(expected.sum(), 1))
    statistic, p_value, df = stats.categorical_test(ref_counts, win_counts, unseen, share)
    notes = [
        f"{unseen / window.counts.sum():.1%} of values never seen in the reference"
        if unseen
        else "",
        f"{len(bins.categories) - kept} rarer categories tested as one"
        if kept < len(bins.categories)
        else "",
    ]
    return ColumnDrift(
        **base,
        test="chi2",
        statistic=statistic,
        p_value=p_value,
        effect=stats.tvd(ref_counts, win_counts),
        effect_name="total_variation",
        min_effect=gate,
        critical_effect=stats.tvd_critical(n_eff, df, alpha),
        moved=_moved(labels, ref_counts, win_counts, settings.top),
        note="; ".join(note for note in notes if note) or None,
    )


def _good_turing(ref: ColumnSketch, singletons: int) -> np.ndarray:
    """The reference's counts with its singletons' rows moved from ``other`` to
    ``unseen``: Good-Turing's estimate of how much of a new sample is values never seen,
    so a long tail's new values are expected rather than counted as drift."""
    counts = ref.counts.copy()
    moved = min(singletons, int(counts[-2]))
    counts[-2] -= moved
    counts[-1] += moved
    return counts


def _pool_tail(
    bins: Bins, reference: np.ndarray, window: np.ndarray, kept: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The first ``kept`` categories (the reference's most common) and the rest pooled
    into ``other``, beside the ``unseen`` bucket."""
    labels = bins.labels()
    if kept >= len(bins.categories):
        return labels, reference, window

    def pooled(counts: np.ndarray) -> np.ndarray:
        return np.concatenate([counts[:kept], [counts[kept:-1].sum()], counts[-1:]])

    return [*labels[:kept], labels[-2], labels[-1]], pooled(reference), pooled(window)


def _discrete(bins: Bins, ref: ColumnSketch) -> bool:
    """A numeric column whose reference values all sit in buckets of one value each."""
    points = bins.point_buckets()
    return bool(points.any() and ref.counts[~points].sum() == 0)


def _values(
    base: dict[str, Any],
    bins: Bins,
    ref: ColumnSketch,
    window: ColumnSketch,
    settings: DriftSettings,
    alpha: float,
) -> ColumnDrift:
    """A flag, a count, a code: chi-square over its values, as a category would be.

    KS on data with ties sees little (and its p-value is conservative), and a 0/1 column
    has no bins to compare; the values themselves are the buckets here.
    """
    statistic, p_value, df = stats.chi2_pooled(ref.counts, window.counts)
    n_eff = stats.effective_n(int(ref.counts.sum()), int(window.counts.sum()))
    return ColumnDrift(
        **base,
        test="chi2",
        statistic=statistic,
        p_value=p_value,
        effect=stats.tvd(ref.counts, window.counts),
        effect_name="total_variation",
        min_effect=settings.effect_gate("chi2", base["column"]),
        critical_effect=stats.tvd_critical(n_eff, df, alpha),
        moved=_moved(bins.labels(), ref.counts, window.counts, settings.top),
        note=f"compared value by value ({int(bins.point_buckets().sum())} values)",
    )


def _numeric(
    base: dict[str, Any],
    reference: Reference,
    name: str,
    ref: ColumnSketch,
    window: ColumnSketch,
    settings: DriftSettings,
    alpha: float,
    values: np.ndarray | None,
) -> ColumnDrift:
    groups = stats.psi_groups(ref.counts, settings.psi_bins)
    ref_coarse, win_coarse = np.bincount(groups, ref.counts), np.bincount(groups, window.counts)
    psi_value, psi_p = stats.psi_test(ref_coarse, win_coarse)
    n_ref, n_win = int(ref.counts.sum()), int(window.counts.sum())
    moved = _moved(_group_labels(reference.layout.columns[name], groups), ref_coarse, win_coarse)
    if _numeric_test(settings) == "psi":
        n_eff = stats.effective_n(n_ref, n_win)
        statistic, p_value, critical = (
            psi_value,
            psi_p,
            stats.psi_critical(n_eff, len(ref_coarse), alpha),
        )
    else:
        statistic, p_value, n_ref = _ks(reference, name, ref, window, values)
        critical = stats.ks_critical(n_ref, n_win, alpha)
    test = _numeric_test(settings)
    return ColumnDrift(
        **base,
        test=test,
        statistic=statistic,
        p_value=p_value,
        effect=statistic,
        effect_name=_EFFECT_NAMES[test],
        min_effect=settings.effect_gate(test, base["column"]),
        critical_effect=critical,
        psi=psi_value,
        moved=moved[: settings.top],
    )


def _ks(
    reference: Reference,
    name: str,
    ref: ColumnSketch,
    window: ColumnSketch,
    values: np.ndarray | None,
) -> tuple[float, float, int]:
    """KS on raw values when both sides have them (exact for small samples), else on bins."""
    if values is not None and name in reference.sample:
        ref_values = reference.sorted_sample(name)
        win_values, _ = column_values(values, "numeric")
        if ref_values.size and win_values.size:
            distance, p_value = stats.ks_samples(ref_values, win_values)
            return distance, p_value, int(ref_values.size)
    distance, p_value = stats.ks_counts(ref.counts, window.counts)
    return distance, p_value, int(ref.counts.sum())


def _group_labels(bins: Bins, groups: np.ndarray) -> list[str]:
    edges, points = bins.edges, bins.point_buckets()
    labels = []
    for group in range(int(groups.max()) + 1):
        members = np.flatnonzero(groups == group)
        if members.size == 0:
            labels.append("(empty)")
        elif members[0] == 0:
            labels.append(f"< {edges[0]:.4g}")
        elif members[-1] == len(groups) - 1:
            labels.append(f">= {edges[-1]:.4g}")
        else:
            labels.append(_span(edges, points, members[0], members[-1]))
    return labels


def _span(edges: tuple[float, ...], points: np.ndarray, first: int, last: int) -> str:
    """``[lo, hi)``; ``= v`` for one value's bucket, ``[lo, v]`` for a span ending on one."""
    low = f"{edges[first - 1]:.4g}"
    if not points[last]:
        return f"[{low}, {edges[last]:.4g})"
    return f"= {low}" if first == last else f"[{low}, {edges[last - 1]:.4g}]"


def _moved(
    labels: list[str], reference: np.ndarray, window: np.ndarray, top: int = 100
) -> tuple[Moved, ...]:
    ref_share = reference / max(reference.sum(), 1)
    win_share = window / max(window.sum(), 1)
    order = np.argsort(-np.abs(win_share - ref_share), kind="stable")[:top]
    return tuple(
        Moved(labels[i], float(ref_share[i]), float(win_share[i]))
        for i in order
        if ref_share[i] != win_share[i]
    )
