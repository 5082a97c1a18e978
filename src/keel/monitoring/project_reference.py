"""The project's drift reference, and the segment sketcher built on it.

``monitoring.reference`` is ``model:<version>`` (the registry's statistics of that model
version), ``data:<source>[@<version>]`` (a published data version,
``keel.monitoring.data_reference``) or a file relative to the project. The prediction
log of a project sketches each segment on it (``PredictionLog.for_project``), so this
module reads the log only through ``LogReader`` and never imports the log itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from keel.monitoring.reference import Reference
from keel.monitoring.segments import LogReader, Sketcher
from keel.monitoring.wiring import load_reference, reference_options

if TYPE_CHECKING:
    from keel.project import Project
    from keel.schema import ComputeConfig

__all__ = ["project_reference", "project_sketcher", "reference_model"]

logger = logging.getLogger("keel.monitoring")


def project_reference(
    project: Project,
    text: str | None,
    log: LogReader | None = None,
    options: dict[str, Any] | None = None,
    compute: ComputeConfig | None = None,
) -> Reference:
    """``monitoring.reference``: ``model:<version>`` (the registry's statistics of that
    model version), ``data:<source>[@<version>]`` (a published data version's rows, read
    on ``compute``, else the project's engine) or a file path relative to the project."""
    if text is not None and text.startswith("model:"):
        from keel.monitoring.registry_reference import from_model

        return from_model(project, text.removeprefix("model:"), prediction_column="score")
    if text is not None and text.startswith("data:"):
        from keel.monitoring.data_reference import from_data

        return from_data(project, text.removeprefix("data:"), options, compute)
    path = project.root / text if text else None
    return load_reference(path, log, None, **(options or {}))


def reference_model(project: Project, text: str | None) -> str | None:
    """The logged name of the model version a ``model:<ref>`` reference describes: its
    rows are the ones to compare with its statistics. None for a file reference."""
    if text is None or not text.startswith("model:"):
        return None
    from keel.monitoring.registry_reference import model_label

    return model_label(project, text.removeprefix("model:"))


def project_sketcher(
    project: Project, compute: ComputeConfig | None = None, *, strict: bool = False
) -> Sketcher | None:
    """Sketch segments on the configured reference (a data reference built on
    ``compute``, else the project's engine); without a usable one, don't, or with
    ``strict`` (the caller needs that reference anyway) raise why."""
    config = project.config.monitoring
    if config is None or config.reference is None:
        return None
    from keel.monitoring.window import sketcher_for

    try:
        options = reference_options(config.drift)
        reference = project_reference(project, config.reference, None, options, compute)
    except Exception as error:  # logging must work even when the reference does not
        if strict:
            raise
        logger.warning("segments will not be sketched: %s", error)
        return None
    return sketcher_for(reference)
