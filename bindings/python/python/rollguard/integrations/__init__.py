"""Integrations of rollguard policies with the systems that serve models.

Each integration is a submodule that imports its third-party library only when it is
imported itself (``import rollguard`` imports none of them):

- `rollguard.integrations.mlflow`: the MLflow model registry (aliases ``champion``,
  ``challenger``, ``previous`` and ``golden`` follow the policy's decisions).
"""
