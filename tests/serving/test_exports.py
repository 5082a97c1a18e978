"""keel.serving's public names: __all__ lists exactly what the package exposes."""

from __future__ import annotations

import types

import keel.serving


def test_all_matches_the_public_names() -> None:
    """Every public name the package exposes (other than its modules) is in __all__."""
    public = {
        name
        for name, value in vars(keel.serving).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(keel.serving.__all__)


def test_the_documented_serving_section_is_the_default() -> None:
    """The keel.yaml example in keel.serving's docstring parses to ServingConfig's defaults."""
    import textwrap

    import yaml

    from keel.schema import ServingConfig

    example = textwrap.dedent((keel.serving.__doc__ or "").split("::", 1)[1])
    assert ServingConfig(**yaml.safe_load(example)["serving"]) == ServingConfig()
