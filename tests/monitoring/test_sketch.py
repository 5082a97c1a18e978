"""Sketches: fixed buckets from the reference, overflow and unseen buckets, merging."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from keel.monitoring.drift import compare
from keel.monitoring.reference import Reference
from keel.monitoring.sketch import OTHER, UNSEEN, Bins, Layout, Sketch


def _reference() -> Reference:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(0, 1, 1000),
            "plan": rng.choice(["basic", "premium"], 1000).astype(object),
        }
    )
    return Reference.from_frame(frame, bins=10)


def test_numeric_bins_are_reference_quantiles_with_overflow_buckets() -> None:
    """Ten quantile bins hold a tenth of the reference each; outside values overflow."""
    reference = _reference()
    counts = reference.sketch.columns["x"].counts
    assert counts[0] == 0 and counts[-1] == 0
    assert list(counts[1:-1]) == [100] * 10
    window = reference.layout.sketch({"x": np.array([-100.0, 100.0, 0.0])}).columns["x"]
    assert window.counts[0] == 1 and window.counts[-1] == 1


def test_categories_never_seen_count_as_unseen() -> None:
    """A category absent from the reference lands in the __unseen__ bucket."""
    reference = _reference()
    sketch = reference.layout.sketch({"plan": np.array(["basic", "gold", "gold"], object)})
    labels = reference.layout.columns["plan"].labels()
    assert dict(zip(labels, sketch.columns["plan"].counts, strict=True))[UNSEEN] == 2


def test_reference_categories_past_the_cap_count_as_other() -> None:
    """Rare reference categories beyond max_categories go to __other__, not __unseen__."""
    values = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 2, object)
    reference = Reference.from_frame({"v": values}, max_categories=2)
    sketch = reference.layout.sketch({"v": np.array(["c", "z"], object)}).columns["v"]
    labels = reference.layout.columns["v"].labels()
    assert dict(zip(labels, sketch.counts, strict=True)) == {"a": 0, "b": 0, OTHER: 1, UNSEEN: 1}


def test_nulls_are_counted_apart() -> None:
    """NaN and None are nulls, not values in any bucket."""
    reference = _reference()
    sketch = reference.layout.sketch(
        {"x": np.array([np.nan, 1.0]), "plan": np.array([None, "basic"], object)}
    )
    assert sketch.columns["x"].nulls == 1 and sketch.columns["x"].counts.sum() == 1
    assert sketch.columns["plan"].nulls == 1


def test_merged_sketches_equal_the_sketch_of_all_rows() -> None:
    """Sketching two halves and merging gives the same counts as sketching the whole."""
    reference = _reference()
    rng = np.random.default_rng(1)
    rows = {"x": rng.normal(0.3, 1, 400), "plan": rng.choice(["basic", "x"], 400).astype(object)}
    half = {name: values[:150] for name, values in rows.items()}
    rest = {name: values[150:] for name, values in rows.items()}
    merged = reference.layout.sketch(half).merge(reference.layout.sketch(rest))
    whole = reference.layout.sketch(rows)
    for name in rows:
        assert list(merged.columns[name].counts) == list(whole.columns[name].counts)


def test_sketch_and_layout_survive_json() -> None:
    """to_dict/from_dict round-trips a layout and a sketch."""
    reference = _reference()
    layout = Layout.from_dict(reference.layout.to_dict())
    sketch = Sketch.from_dict(reference.sketch.to_dict())
    assert layout == reference.layout
    assert list(sketch.columns["x"].counts) == list(reference.sketch.columns["x"].counts)


def test_saved_reference_gives_the_same_verdict(tmp_path: Path) -> None:
    """A reference saved to JSON and loaded back judges a window identically."""
    reference = _reference()
    reference.save(tmp_path / "ref.json")
    loaded = Reference.load(tmp_path / "ref.json")
    window = reference.layout.sketch({"x": np.random.default_rng(2).normal(1, 1, 300)})
    assert compare(loaded, window).to_dict() == compare(reference, window).to_dict()


def test_constant_reference_column_gets_one_bin() -> None:
    """A column with one value still has a bin, with both overflow buckets around it."""
    bins = Bins.numeric(np.array([5.0, 5.0, 5.0]), 10)
    assert bins.size == 3
    assert list(bins.index(np.array([4.0, 5.0, 6.0]))) == [0, 1, 2]
