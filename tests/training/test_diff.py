"""``keel registry diff``: metric deltas, config and data changes."""

from __future__ import annotations

from keel.training.diff import diff_records


def _record(auc: float, max_iter: int, rows: int) -> dict[str, object]:
    return {
        "metrics": {"roc_auc": auc},
        "training": {"model": {"params": {"max_iter": max_iter}}, "seed": 1},
        "data": {"ref": "file:a.csv", "sha256": "x", "rows": rows, "start": None, "end": None},
    }


def test_metric_delta_is_second_minus_first() -> None:
    """The delta of a metric is the second version's value minus the first's."""
    diff = diff_records(1, _record(0.8, 10, 100), 2, _record(0.85, 10, 100))
    assert diff["metrics"]["roc_auc"]["delta"] == 0.05


def test_only_changed_config_keys_are_listed() -> None:
    """Config differences are dotted keys, and unchanged keys are left out."""
    diff = diff_records(1, _record(0.8, 10, 100), 2, _record(0.8, 20, 100))
    assert diff["config"] == {"model.params.max_iter": {"a": 10, "b": 20}}


def test_data_changes_are_listed() -> None:
    """A different row count shows in the data diff."""
    diff = diff_records(1, _record(0.8, 10, 100), 2, _record(0.8, 10, 120))
    assert diff["data"] == {"rows": {"a": 100, "b": 120}}
