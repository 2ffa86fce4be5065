"""The MLOps cookbook's package: serve, train and watch any tabular scikit-learn model.

Layers, each importing only those below it (``make lint`` checks it with import-linter):

- ``cookbook.web`` and ``cookbook.cli``: the Flask service and the command-line support;
- ``cookbook.lifecycle``: training, the registry, the quality gate, evaluation, drift, batch;
- ``cookbook.core``: the model schema, validation, prediction, verified loading
  (standard library only, so a Lambda package or a thin client needs nothing else).
"""

__version__ = "2.0.0"
