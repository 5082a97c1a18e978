"""Reading what a pilot declares, from each kind of requirements file."""

from __future__ import annotations

import pytest

from keel.audit._pilot import TextFile
from keel.audit._requirements import PARSE_ERRORS, declared

PYPROJECT = """\
[project]
name = "churn"
dependencies = [
    "pandas>=2.1",
    "scikit-learn",
]

[project.optional-dependencies]
serve = ["Flask==3.0.0"]
"""
POETRY = """\
[tool.poetry.dependencies]
python = "^3.11"
numpy = "^1.26"
requests = "*"
"""
SETUP_CFG = """\
[metadata]
name = churn

[options]
install_requires =
    numpy>=1.26
    joblib
"""
ENVIRONMENT = """\
name: churn
dependencies:
  - python=3.11
  - conda-forge::numpy=1.26
  - scikit-learn
  - pip
  - pip:
      - lightgbm==4.3.0
"""
PIPFILE = """\
[packages]
pandas = "==2.2.2"
flask = "*"

[dev-packages]
pytest = {version = "*"}
"""
REQUIREMENTS = """\
# pinned for the pilot
pandas==2.2.2  # data
-r base.txt
--index-url https://example.org/simple
scikit_learn
git+https://github.com/org/repo.git
"""

CASES = {
    "pyproject.toml": (
        PYPROJECT,
        {("pandas", True, 4), ("scikit-learn", False, 5), ("flask", True, 9)},
    ),
    "poetry": (POETRY, {("numpy", True, 3), ("requests", False, 4)}),
    "setup.cfg": (SETUP_CFG, {("numpy", True, 6), ("joblib", False, 7)}),
    "environment.yml": (
        ENVIRONMENT,
        {("numpy", True, 4), ("scikit-learn", False, 5), ("lightgbm", True, 8)},
    ),
    "Pipfile": (PIPFILE, {("pandas", True, 2), ("flask", False, 3), ("pytest", False, 6)}),
    "requirements-dev.txt": (REQUIREMENTS, {("pandas", True, 2), ("scikit-learn", False, 5)}),
}
FILE_NAMES = {"poetry": "pyproject.toml"}


@pytest.mark.parametrize("case", list(CASES))
def test_each_format_yields_name_bound_and_line(case: str) -> None:
    """Names are canonical, the version bound is seen, the line is the declaration's."""
    text, expected = CASES[case]
    entries = declared(TextFile(FILE_NAMES.get(case, case), text))
    assert {(d.name, d.pinned, d.line) for d in entries} == expected


@pytest.mark.parametrize(
    ("name", "text"),
    [("pyproject.toml", "[project\n"), ("setup.cfg", "no section\n"), ("environment.yml", "a: [")],
)
def test_a_malformed_file_raises_a_parse_error(name: str, text: str) -> None:
    """A file that does not parse raises one of the errors the rule turns into a finding."""
    with pytest.raises(PARSE_ERRORS):
        declared(TextFile(name, text))
