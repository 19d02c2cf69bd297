"""Training tests run tiny models: one intra-op thread is faster than several fighting over
two cores (and keeps timings steady when other work shares the machine)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # subprocesses (the CLIs) inherit it


@pytest.fixture(scope="module")
def policy_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic-task policy (pre-trained to answer with words), built once a module."""
    from training.ml.synthetic import PolicyShape, build_synthetic_policy

    root = tmp_path_factory.mktemp("rounds")
    return build_synthetic_policy(
        root / "policy", shape=PolicyShape(hidden=32, layers=1, heads=2, pretrain_steps=20)
    )
