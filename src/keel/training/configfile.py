"""``keel train --config FILE``: a training config in its own file.

The file holds a ``training:`` section (and optionally ``gate:``), exactly as they would
appear in keel.yaml; paths in it stay relative to the project folder.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from keel.errors import ConfigError
from keel.schema import GateConfig, TrainingConfig

__all__ = ["load_training_file"]


def load_training_file(path: Path) -> tuple[TrainingConfig, GateConfig | None]:
    """The training (and gate) sections of a standalone config file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: malformed YAML ({error})") from None
    if not isinstance(raw, dict) or "training" not in raw:
        raise ConfigError(f"{path}: expected a mapping with a training: section")
    unknown = sorted(set(raw) - {"training", "gate"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown sections {', '.join(unknown)}; only training: and gate:"
        )
    try:
        training = TrainingConfig.model_validate(raw["training"])
        gate = None if raw.get("gate") is None else GateConfig.model_validate(raw["gate"])
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    return training, gate
