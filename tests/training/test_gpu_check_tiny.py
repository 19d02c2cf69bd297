"""bench/gpu_check.py is meant for a GPU machine; its ``--tiny`` mode runs every section on
CPU with tiny shapes in fp32, so the script cannot rot between GPU runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_every_section_in_tiny_mode() -> None:
    done = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--tiny"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for name in ("reward model", "PPO full", "PPO LoRA", "GRPO", "generation"):
        assert f"[tiny-qwen2 {name}] ..." in out, name
    assert "FAILED" not in out and "all sections passed" in out
    assert out.count("memory_plan peak") == 2  # both PPO runs compare with the estimate
