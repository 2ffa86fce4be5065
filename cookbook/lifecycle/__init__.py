"""Training, the registry, the quality gate, evaluation, drift and batch scoring."""
