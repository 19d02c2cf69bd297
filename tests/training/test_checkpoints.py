"""Where a transformers/TRL trainer resumes (training.ml.checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path

from training.ml.checkpoints import resume_point


def checkpoint(folder: Path, step: int, max_steps: int | None) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if max_steps is not None:  # None: a checkpoint whose trainer state was never written
        (path / "trainer_state.json").write_text(
            json.dumps({"global_step": step, "max_steps": max_steps})
        )
    return path


def test_the_newest_unfinished_complete_checkpoint_is_chosen(tmp_path: Path) -> None:
    assert resume_point(None) is None
    assert resume_point(tmp_path / "missing") is None
    assert resume_point(tmp_path) is None
    second = checkpoint(tmp_path, 2, 10)
    assert resume_point(tmp_path) == second
    tenth = checkpoint(tmp_path, 10, 10)  # numbers, not names: 10 sorts after 2
    sixth = checkpoint(tmp_path, 6, 10)
    checkpoint(tmp_path, 8, None)  # cut short while saving
    (tmp_path / "checkpoint-last").mkdir()
    assert resume_point(tmp_path) == sixth  # the final one and the incomplete one passed over
    assert tenth.is_dir()


def test_only_a_final_checkpoint_means_starting_over(tmp_path: Path) -> None:
    checkpoint(tmp_path, 3, 3)
    assert resume_point(tmp_path) is None
