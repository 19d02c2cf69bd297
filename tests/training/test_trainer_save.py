"""Saving a trainer's model: whole weights are saved as they are; sharded ones (ZeRO, FSDP)
go through the trainer's own gather, and LoRA is refused there before any training."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from training.ml.config import ConfigError
from training.ml.trainer_save import is_sharded, refuse_sharded_lora, save_trained


def test_a_plain_trainer_saves_its_model_as_it_is(tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=32,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    args = TrainingArguments(output_dir=str(tmp_path / "w"), use_cpu=True, report_to=[])
    trainer = Trainer(model=model, args=args)
    assert not is_sharded(trainer)
    save_trained(trainer, tmp_path / "out", lora=False)
    reloaded = LlamaForCausalLM.from_pretrained(tmp_path / "out")
    for (name, a), (_, b) in zip(
        sorted(model.state_dict().items()), sorted(reloaded.state_dict().items()), strict=True
    ):
        assert a.equal(b), name


@pytest.mark.parametrize("flag", ["is_deepspeed_enabled", "is_fsdp_enabled"])
def test_sharded_trainers_save_through_their_own_gather_and_refuse_lora(
    flag: str, tmp_path: Path
) -> None:
    saved: list[str] = []
    sharded = SimpleNamespace(**{flag: True}, save_model=saved.append, model="sharded")
    assert is_sharded(sharded)
    with pytest.raises(ConfigError, match="lora_rank"):
        refuse_sharded_lora(sharded, lora=True)
    refuse_sharded_lora(sharded, lora=False)  # nothing to refuse
    assert save_trained(sharded, tmp_path / "out", lora=False) == "sharded"
    assert saved == [str(tmp_path / "out")]
