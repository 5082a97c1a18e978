"""Keel beside the tools a team already runs: each integration is an extra.

- ``keel.integrations.mlflow`` (``keel-ml[mlflow]``): import MLflow models into the
  registry and export versions as MLflow models.
"""

__all__: list[str] = []
