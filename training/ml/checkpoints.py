"""Where a transformers/TRL trainer resumes after a lost worker (no Django)."""

from __future__ import annotations

import json
from pathlib import Path


def resume_point(folder: Path | None) -> Path | None:
    """The newest ``checkpoint-N`` in ``folder`` that a lost worker left mid-training, or
    None: train from the start.

    A checkpoint counts once its trainer state is written (the last file of a checkpoint).
    The one saved at the final step is passed over: resuming from a finished state makes the
    trainer take one step more than asked. Resuming from the one before redoes at most
    ``checkpoint_steps`` steps.
    """
    if folder is None or not folder.is_dir():
        return None
    numbered = [
        (int(p.name.split("-")[1]), p)
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    for _, checkpoint in sorted(numbered, reverse=True):
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        if state["global_step"] < state["max_steps"]:
            return checkpoint
    return None
