"""Training that lives only in a notebook, and a pilot with no tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.audit._layout import has_tests

from .helpers import found, notebook

FIT_CELL = "from sklearn.linear_model import LogisticRegression\nm = LogisticRegression()\n"
FIT_CELL += "m.fit(X, y)\n"


def test_training_only_in_a_notebook_is_found_at_the_fit(tmp_path: Path) -> None:
    """A fit() in a notebook and none in any .py file is reported at the notebook's fit."""
    [hit] = found(
        tmp_path, {"train.ipynb": notebook("import os\n", FIT_CELL)}, "notebook-only-training"
    )
    assert (hit.file, hit.cell, hit.line) == ("train.ipynb", 3, 3)


def test_training_in_a_module_is_not_flagged(tmp_path: Path) -> None:
    """When a .py file also fits the model, the notebook is exploration, not the pipeline."""
    files = {"train.ipynb": notebook(FIT_CELL), "pipeline.py": FIT_CELL}
    assert found(tmp_path, files, "notebook-only-training") == []


def test_a_chained_fit_in_a_module_counts_as_training(tmp_path: Path) -> None:
    """``Estimator(...).fit(X, y)`` in a .py file is training outside the notebook."""
    module = "from sklearn.svm import SVC\n\n\ndef train(X, y):\n    return SVC().fit(X, y)\n"
    files = {"train.ipynb": notebook(FIT_CELL), "pipeline.py": module}
    assert found(tmp_path, files, "notebook-only-training") == []


def test_boosting_train_functions_count_as_training(tmp_path: Path) -> None:
    """xgboost.train(...) in a notebook is training as much as .fit() is."""
    cell = "import xgboost as xgb\nbooster = xgb.train(params, dtrain)\n"
    assert len(found(tmp_path, {"nb.ipynb": notebook(cell)}, "notebook-only-training")) == 1


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (("train.py", "tests/test_train.py"), True),
        (("train.py", "test_features.py"), True),
        (("train.py", "features_test.py"), True),
        (("train.py", "src/test/conftest.py"), True),
        (("train.py", "testing_notes.md", "contest.py"), False),
    ],
)
def test_tests_are_recognised(paths: tuple[str, ...], expected: bool) -> None:
    """test_*.py, *_test.py or a tests/ folder count as tests; look-alikes do not."""
    assert has_tests(paths) is expected


def test_no_tests_is_one_finding_for_the_pilot(tmp_path: Path) -> None:
    """A pilot with code and no tests gets one finding for the whole folder."""
    [hit] = found(tmp_path, {"train.py": "import os\n"}, "no-tests")
    assert (hit.file, hit.line, hit.location) == (".", None, ".")


def test_a_pilot_with_tests_is_not_flagged(tmp_path: Path) -> None:
    """A tests/ folder with a test module satisfies the rule."""
    files = {"train.py": "import os\n", "tests/test_train.py": "def test_x():\n    pass\n"}
    assert found(tmp_path, files, "no-tests") == []
