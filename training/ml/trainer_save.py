"""Saving a TRL/transformers trainer's model as a plain artifact, whether its weights sit whole
in each process (one device, DDP) or sharded across processes (DeepSpeed ZeRO, FSDP under
``accelerate launch``). Plain Python: no Django."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.ml.config import ConfigError


def is_sharded(trainer: Any) -> bool:
    """True when the trainer's weights are partitioned across processes (DeepSpeed or FSDP):
    only the trainer can gather them."""
    return bool(getattr(trainer, "is_deepspeed_enabled", False)) or bool(
        getattr(trainer, "is_fsdp_enabled", False)
    )


def refuse_sharded_lora(trainer: Any, lora: bool) -> None:
    """Before training: LoRA adapters are merged into the saved model, which needs the whole
    model in one process — not what ZeRO or FSDP hold."""
    if lora and is_sharded(trainer):
        raise ConfigError(
            {
                "lora_rank": "LoRA adapters are merged into the saved model, which DeepSpeed "
                "ZeRO and FSDP cannot do here; train LoRA with the ddp config (or lora_rank: 0)"
            }
        )


def save_trained(trainer: Any, out: Path, *, lora: bool) -> Any:
    """The trained model into ``out`` (LoRA adapters merged): sharded weights are gathered
    by the trainer (``save_model``: ZeRO-3's 16-bit gather, FSDP's full state dict), which
    writes on the main process only; whole weights are saved as they are. Returns the model
    as saved (adapters merged) for what follows, e.g. an evaluation."""
    out.mkdir(parents=True, exist_ok=True)
    if is_sharded(trainer):
        refuse_sharded_lora(trainer, lora)
        trainer.save_model(str(out))
        return trainer.model
    trained: Any = trainer.model
    if lora:  # the artifact is a plain model again
        trained = trained.merge_and_unload()
    trained.save_pretrained(out)
    return trained
