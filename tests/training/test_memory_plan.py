"""The PPO memory estimate: exact parameter counts against real transformers models, the
byte arithmetic of a known config worked out by hand, what checkpointing and micro-batches
change, and the refusal of a run that cannot fit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from training.ml.config import ConfigError
from training.ml.memory_plan import (
    GIB,
    ModelShape,
    PlanInputs,
    available_memory,
    check_fits,
    estimate,
)

LLAMA3_8B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "vocab_size": 128256,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "tie_word_embeddings": False,
}


def test_parameter_counts_match_real_models() -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
        Qwen2ForSequenceClassification,
    )

    sizes: dict[str, Any] = {
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 101,
    }
    llama = LlamaConfig(**sizes, tie_word_embeddings=False)
    qwen = Qwen2Config(**sizes, tie_word_embeddings=True)
    qwen.num_labels = 1

    def count(model: object, trained_only: bool = False) -> int:
        return sum(
            p.numel()
            for p in model.parameters()  # type: ignore[attr-defined]
            if p.requires_grad or not trained_only
        )

    assert ModelShape.from_config(llama).causal_lm_parameters() == count(LlamaForCausalLM(llama))
    shape = ModelShape.from_config(qwen)
    assert shape.attention_bias and shape.tie_embeddings
    assert shape.causal_lm_parameters() == count(Qwen2ForCausalLM(qwen))
    assert shape.scalar_head_parameters() == count(Qwen2ForSequenceClassification(qwen))
    lora = get_peft_model(
        Qwen2ForCausalLM(qwen), LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    assert shape.lora_parameters(4) == count(lora, trained_only=True)


def test_llama3_8b_bytes_worked_out_by_hand() -> None:
    shape = ModelShape.from_config(LLAMA3_8B)
    # per block: q, o 4096² each; k, v 4096·1024 each; gate, up, down 4096·14336 each; 2 norms
    block = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    assert block == 218_112_000
    embeddings = 128256 * 4096
    assert shape.causal_lm_parameters() == 32 * block + 2 * embeddings + 4096 == 8_030_261_248
    backbone = 8_030_261_248 - embeddings  # no LM head: reward and value models
    scalar = backbone + 4096
    assert shape.scalar_head_parameters() == scalar
    # LoRA r=16 on q, k, v, o, gate, up, down of 32 blocks
    assert shape.lora_parameters(16) == 32 * 16 * (
        2 * (4096 + 4096) + 2 * (4096 + 1024) + 3 * (4096 + 14336)
    )
    assert shape.lora_parameters(16) == 41_943_040

    inputs = PlanInputs(precision="fp32", batch_size=64, mini_batch_size=8)
    fp32 = estimate(shape, shape, inputs).terms
    assert fp32["policy weights"] == fp32["reference weights"] == 4 * 8_030_261_248
    assert fp32["value weights"] == fp32["reward weights"] == 4 * scalar
    trained = 8_030_261_248 + scalar  # the policy and the value model
    assert fp32["gradients"] == 4 * trained
    assert fp32["optimizer state"] == 8 * trained  # Adam's two fp32 moments
    assert fp32["master weights"] == 0

    mixed = estimate(shape, shape, PlanInputs("bf16", 64, 8)).terms
    assert mixed["policy weights"] == 2 * 8_030_261_248
    assert mixed["optimizer state"] == 8 * trained
    assert mixed["master weights"] == 4 * trained
    assert mixed["gradients"] == 4 * trained  # the masters' fp32 gradients at the step
    pure = estimate(shape, shape, PlanInputs("bf16-pure", 64, 8)).terms
    assert pure["optimizer state"] == 4 * trained and pure["master weights"] == 0

    lora = estimate(
        shape, shape, PlanInputs("bf16", 64, 8, lora_rank=16, critic_lora_rank=16)
    ).terms
    assert lora["reference weights"] == 0  # the policy with its adapters disabled
    assert lora["policy weights"] == 2 * (8_030_261_248 + 41_943_040)
    lora_trained = 41_943_040 + 41_943_040 + 4096  # both adapters and the value head
    assert lora["optimizer state"] == 8 * lora_trained
    assert lora["master weights"] == 4 * lora_trained


def test_logits_micro_batches_and_checkpointing() -> None:
    shape = ModelShape.from_config(LLAMA3_8B)
    base = PlanInputs("bf16", 64, 16, prompt_length=100, response_length=50, logprob_chunk_size=4)
    plan = estimate(shape, shape, base)
    # response logits [16, 51, V] in bf16 and their gradient, one chunk of 4 rows in fp32 ×3
    assert plan.terms["logits (training)"] == 2 * 16 * 51 * 128256 * 2 + 3 * 4 * 50 * 128256 * 4
    halves = estimate(
        shape, shape, PlanInputs(**{**base.__dict__, "gradient_accumulation_steps": 2})
    )
    assert halves.terms["activations (policy)"] * 2 == plan.terms["activations (policy)"]
    checkpointed = estimate(
        shape, shape, PlanInputs(**{**base.__dict__, "gradient_checkpointing": True})
    )
    assert checkpointed.terms["activations (policy)"] < plan.terms["activations (policy)"] / 10
    assert checkpointed.peak < plan.peak
    # KV cache of generation: 64 rows × 150 tokens × 32 layers × (k, v) × 8·128 × bf16
    assert plan.terms["generation kv cache"] == 64 * 150 * 32 * 2 * 1024 * 2


def test_refusal_names_the_biggest_terms() -> None:
    shape = ModelShape.from_config(LLAMA3_8B)
    plan = estimate(shape, shape, PlanInputs("fp32", 64, 8))
    with pytest.raises(ConfigError) as caught:
        check_fits(plan, 80 * GIB, "an 80 GB device")
    message = caught.value.fields["memory"]
    assert "exceeds 80.00 GiB (an 80 GB device)" in message
    trained = 8_030_261_248 + 8_030_261_248 - 128256 * 4096 + 4096
    assert f"biggest terms: optimizer state {8 * trained / GIB:.2f} GiB, " in message
    assert f"gradients {4 * trained / GIB:.2f} GiB" in message
    check_fits(plan, plan.peak, "exactly enough")  # no error
    total, source = available_memory("cpu")
    assert total > 0 and "RAM" in source


def test_ppo_refuses_a_run_over_its_memory_limit(tmp_path: Path) -> None:
    from training.ml.ppo import PPOTrainer, parse_ppo_config
    from training.ml.synthetic import TOPICS, WORDS, prompt_rows
    from training.ml.tiny import build_causal_lm, build_tokenizer

    corpus = [" ".join(WORDS)] * 5 + [" ".join(TOPICS)] * 5
    policy = build_causal_lm(
        build_tokenizer(corpus, tmp_path / "t", vocab_size=300), tmp_path / "p"
    )
    prompts = [r["prompt"] for r in prompt_rows(4, 1)]

    def build(limit: float) -> PPOTrainer:
        config = parse_ppo_config(
            {"total_episodes": 4, "batch_size": 4, "mini_batch_size": 4, "memory_limit_gib": limit}
        )
        return PPOTrainer(policy_dir=policy, reward_dir=policy, prompts=prompts, config=config)

    with pytest.raises(ConfigError, match=r"estimated peak .* exceeds .*memory_limit_gib.*biggest"):
        build(1e-6)
    plan = build(1.0).memory_plan
    assert 0 < plan.peak < GIB and plan.terms["reference weights"] > 0

    # the CLI exits 2 with the refusal before training
    prompts_file = tmp_path / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    config_file = tmp_path / "config.json"
    config_file.write_text(
        json.dumps(
            {"total_episodes": 4, "batch_size": 4, "mini_batch_size": 4, "memory_limit_gib": 1e-6}
        )
    )
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.ml.ppo",
            "--policy",
            str(policy),
            "--reward",
            str(policy),
            "--prompts",
            str(prompts_file),
            "--out",
            str(tmp_path / "out"),
            "--config",
            str(config_file),
        ],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "refused: memory: estimated peak" in refused.stderr
    assert "memory estimate: peak" in refused.stderr  # the log line came first
    assert not (tmp_path / "out").exists()
