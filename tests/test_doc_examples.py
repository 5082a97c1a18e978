"""Code examples in Keel's docstrings run, so the documentation cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import yaml

import keel


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(keel.__path__, "keel."):
        spec = importlib.util.find_spec(info.name)
        source = spec.loader.get_source(info.name) if spec and spec.loader else None  # type: ignore[attr-defined]
        examples = [line for line in (source or "").splitlines() if ">>> " in line]
        if any("doctest: +SKIP" not in line for line in examples):  # one that runs here
            names.append(info.name)
    return names


def test_docstring_examples_exist() -> None:
    """The collector finds the examples it is meant to run."""
    assert "keel.monitoring" in _modules_with_examples()


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples_run(name: str) -> None:
    """Every ``>>>`` example in the module gives the output its docstring shows."""
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} examples failed"


def test_the_documented_serving_section_shows_the_schema_s_defaults() -> None:
    """keel.serving's docstring lists every serving: key with its default: each listed
    value is the default the schema gives."""
    import keel.serving
    from keel.schema import ServingConfig

    text = keel.serving.__doc__ or ""
    block = text.split("(every key optional; defaults shown)::", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    shown = yaml.safe_load("\n".join(lines))["serving"]
    assert len(shown) > 10  # the whole section was read
    defaults = ServingConfig().model_dump()
    documented = ServingConfig.model_validate(shown).model_dump()  # "10s" read as keel.yaml is
    for key in shown:
        assert key in defaults, f"the docstring shows serving.{key}, which the schema lacks"
        said = f"serving.{key}: docstring {documented[key]!r}, schema {defaults[key]!r}"
        assert documented[key] == defaults[key], said
