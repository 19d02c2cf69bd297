"""Training models: model registry, training runs, RLHF rounds (added by the training work)."""
