"""Keel beside the tools a team already runs: each integration is an extra.

- ``keel.integrations.mlflow`` (``keel-ml[mlflow]``): import MLflow models into the
  registry and export versions as MLflow models.
- ``keel.integrations.prefect`` (``keel-ml[prefect]``): Keel's pipeline steps as Prefect
  tasks, and flows that chain them (ingest -> train and gate -> deploy; monitoring).
"""

__all__: list[str] = []
