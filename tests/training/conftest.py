"""Training tests run tiny models: one intra-op thread is faster than several fighting over
two cores (and keeps timings steady when other work shares the machine)."""

from __future__ import annotations

import os

import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # subprocesses (the CLIs) inherit it
