"""Dependencies: a missing requirements file, undeclared imports, unpinned packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.audit._deps import distributions

from .helpers import found, notebook

CODE = "import os\nimport numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"


def test_no_requirements_file_is_one_finding_naming_the_imports(tmp_path: Path) -> None:
    """Without any requirements file the pilot gets one finding listing what it imports."""
    [hit] = found(tmp_path, {"train.py": CODE}, "no-requirements")
    assert hit.file == "." and hit.severity.value == "high"
    assert "numpy, sklearn" in hit.message


def test_only_stdlib_code_needs_no_requirements_file(tmp_path: Path) -> None:
    """Code that imports only the standard library is not flagged for a missing file."""
    assert found(tmp_path, {"tool.py": "import json, os\n"}, "no-requirements") == []


@pytest.mark.parametrize(
    ("requirements", "missing"),
    [
        ("numpy==1.26.4\n", ["sklearn"]),
        ("numpy==1.26.4\nscikit-learn==1.4.2\n", []),
        ("NumPy==1.26.4\nscikit_learn==1.4.2\n", []),
    ],
)
def test_undeclared_imports_are_found(
    tmp_path: Path, requirements: str, missing: list[str]
) -> None:
    """Each third-party import not declared anywhere is reported at its import line."""
    files = {"train.py": CODE, "requirements.txt": requirements}
    hits = found(tmp_path, files, "missing-dependency")
    assert [h.message.split(",")[0].removeprefix("imports ") for h in hits] == missing
    assert all(h.line == 3 for h in hits)


def test_the_pilots_own_modules_are_not_dependencies(tmp_path: Path) -> None:
    """Imports of the pilot's own modules and packages are not missing packages."""
    files = {
        "train.py": "import features\nfrom churn.model import build\n",
        "features.py": "",
        "churn/model.py": "",
        "requirements.txt": "",
    }
    assert found(tmp_path, files, "missing-dependency") == []


@pytest.mark.parametrize(
    ("handler", "flagged"),
    [("except ImportError", False), ("except (ImportError, OSError)", False), ("finally", True)],
)
def test_optional_imports_are_not_missing(tmp_path: Path, handler: str, flagged: bool) -> None:
    """An import guarded by an ImportError handler is optional, not a missing package."""
    code = f"try:\n    import ujson as json\n{handler}:\n    pass\n"
    files = {"io_utils.py": code, "requirements.txt": ""}
    assert len(found(tmp_path, files, "missing-dependency")) == int(flagged)


def test_a_notebook_import_counts_as_a_dependency(tmp_path: Path) -> None:
    """Imports in notebook cells are checked too, located by cell and line."""
    files = {"eda.ipynb": notebook("import os\nimport seaborn as sns\n"), "requirements.txt": ""}
    [hit] = found(tmp_path, files, "missing-dependency")
    assert (hit.cell, hit.line) == (2, 2)


@pytest.mark.parametrize(
    ("line", "flagged"),
    [("flask\n", True), ("flask==3.0.0\n", False), ("flask>=3,<4\n", False)],
)
def test_unpinned_entries_are_found(tmp_path: Path, line: str, flagged: bool) -> None:
    """A declared package with no version bound is reported at its line."""
    files = {"requirements.txt": "pandas==2.2.2\n" + line}
    hits = found(tmp_path, files, "unpinned-dependency")
    assert [(h.file, h.line) for h in hits] == ([("requirements.txt", 2)] if flagged else [])


def test_a_malformed_requirements_file_is_reported(tmp_path: Path) -> None:
    """A pyproject.toml that does not parse is a finding, not a crash."""
    hits = found(tmp_path, {"pyproject.toml": "[project\n", "a.py": ""}, "syntax-error")
    assert [h.file for h in hits] == ["pyproject.toml"]


@pytest.mark.parametrize(
    ("module", "distribution"),
    [("sklearn", "scikit-learn"), ("cv2", "opencv-python"), ("PIL", "pillow"), ("yaml", "pyyaml")],
)
def test_import_names_map_to_distributions(module: str, distribution: str) -> None:
    """Imports whose package is named differently map to the name to declare."""
    assert distributions(module)[0] == distribution
