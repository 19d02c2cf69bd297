"""The one LoRA setting of every trainer: rank r, alpha 2r, no dropout."""

from __future__ import annotations

from typing import Any


def lora_config(rank: int, task: str, *, all_linear: bool = False) -> Any:
    """A peft ``LoraConfig`` for ``task`` ("CAUSAL_LM", "SEQ_CLS"), or None when rank is 0.
    ``all_linear`` targets every linear layer (else peft's per-architecture default)."""
    if not rank:
        return None
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType[task],
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.0,
        target_modules="all-linear" if all_linear else None,
    )
