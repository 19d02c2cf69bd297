"""PPO precision and memory features on tiny random models (CPU, seconds): the value model
of a LoRA policy whose reward model reads another vocabulary, fp32 everywhere under fp32,
bf16 refused without CUDA, fp32 master weights, chunked log-probs, micro-batched rollout
forward passes, gradient accumulation and gradient checkpointing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from training.ml.config import ConfigError
from training.ml.ppo import (
    PPOTrainer,
    Rollout,
    TrainedParameters,
    parse_ppo_config,
    token_logprobs,
)
from training.ml.ppo_math import entropy_from_logits
from training.ml.synthetic import TOPICS, WORDS, prompt_rows
from training.ml.tiny import build_causal_lm, build_tokenizer

CUDA_BF16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny random policy; a reward model with the same tokenizer and one whose
    tokenizer (and vocabulary size) differs."""
    root = tmp_path_factory.mktemp("ppo-memory")
    corpus = [" ".join(WORDS)] * 5 + [" ".join(TOPICS)] * 5
    policy = build_causal_lm(build_tokenizer(corpus, root / "tp", vocab_size=300), root / "p")
    other = build_causal_lm(
        build_tokenizer(corpus, root / "tr", vocab_size=270), root / "r", seed=1
    )
    return {
        "policy": policy,
        "same_vocab_reward": policy,  # loaded as a sequence classifier: a random score head
        "other_vocab_reward": other,
        "prompts": [r["prompt"] for r in prompt_rows(8, 3)],
        "root": root,
    }


def small(**overrides: Any) -> Any:
    raw = {
        "total_episodes": 8,
        "batch_size": 8,
        "mini_batch_size": 8,
        "ppo_epochs": 1,
        "max_new_tokens": 5,
        "max_approx_kl": 0.0,
        "precision": "fp32",
    }
    return parse_ppo_config(raw | overrides)


def trainer(models: dict[str, Any], reward: str = "same_vocab_reward", **overrides: Any) -> Any:
    return PPOTrainer(
        policy_dir=models["policy"],
        reward_dir=models[reward],
        prompts=models["prompts"],
        config=small(**overrides),
    )


def test_lora_policy_with_a_reward_model_of_another_vocabulary_trains(
    models: dict[str, Any],
) -> None:
    ppo = trainer(models, "other_vocab_reward", lora_rank=4)
    assert not ppo.score_ids  # the reward model reads re-encoded text
    # the value model is the policy's plain backbone (its vocabulary), no LoRA layers in it
    embeddings = ppo.value.backbone.get_input_embeddings().weight
    assert embeddings.shape[0] == ppo.policy.get_input_embeddings().weight.shape[0]
    assert embeddings.shape[0] != ppo.scorer.models[0].get_input_embeddings().weight.shape[0]
    assert not any("lora" in name for name, _ in ppo.value.named_parameters())
    stats = ppo.train_step(models["prompts"])
    assert stats["kl"] == pytest.approx(0.0, abs=1e-5)  # reference = adapters disabled
    assert torch.isfinite(torch.tensor(stats["value_loss"]))


def test_critic_lora_trains_adapters_and_head_only(models: dict[str, Any]) -> None:
    ppo = trainer(models, "other_vocab_reward", lora_rank=4, critic_lora_rank=2)
    names = [n for n, p in ppo.value.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or n.startswith("head.") for n in names)
    assert any(n.startswith("head.") for n in names)
    frozen = {n: p.clone() for n, p in ppo.value.named_parameters() if not p.requires_grad}
    ppo.train_step(models["prompts"])
    after = dict(ppo.value.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in frozen.items())


def test_fp32_is_fp32_everywhere_even_from_a_bf16_checkpoint(
    models: dict[str, Any], tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    saved = tmp_path / "bf16-policy"
    model = AutoModelForCausalLM.from_pretrained(models["policy"], dtype=torch.bfloat16)
    model.save_pretrained(saved)
    AutoTokenizer.from_pretrained(models["policy"]).save_pretrained(saved)
    models = models | {"policy": saved, "same_vocab_reward": saved}
    ppo = trainer(models)
    assert ppo.precision == "fp32"
    for name, module in [
        ("policy", ppo.policy),
        ("reference", ppo.reference),
        ("value", ppo.value),
        ("reward", ppo.scorer.models[0]),
    ]:
        assert {p.dtype for p in module.parameters()} == {torch.float32}, name
    from training.ml.scoring import RewardScorer  # GRPO and RLOO score through it too

    scorer = RewardScorer(saved)
    assert {p.dtype for p in scorer.models[0].parameters()} == {torch.float32}
    lora = trainer(models, lora_rank=4, critic_lora_rank=2)
    assert lora.reference is None
    assert {p.dtype for p in lora.policy.parameters()} == {torch.float32}
    assert {p.dtype for p in lora.value.parameters()} == {torch.float32}


@pytest.mark.skipif(CUDA_BF16, reason="bf16 is allowed where CUDA supports it")
def test_bf16_modes_are_refused_without_cuda(models: dict[str, Any]) -> None:
    from training.ml.reward import use_bf16

    for mode in ("bf16", "bf16-pure"):
        with pytest.raises(ConfigError, match="needs a CUDA device") as caught:
            trainer(models, precision=mode)
        assert set(caught.value.fields) == {"precision"}
    assert trainer(models, precision="auto").precision == "fp32"
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        use_bf16("bf16")  # the reward, DPO, GRPO and RLOO trainers' bf16 argument
    assert use_bf16("auto") is False and use_bf16("fp32") is False


def test_precision_and_accumulation_config_errors() -> None:
    from training.ml.reward import parse_config

    with pytest.raises(ConfigError) as caught:
        parse_ppo_config({"precision": "fp16", "logprob_chunk_size": 0})
    assert set(caught.value.fields) == {"precision", "logprob_chunk_size"}
    with pytest.raises(ConfigError, match="must divide mini_batch_size"):
        parse_ppo_config({"mini_batch_size": 16, "gradient_accumulation_steps": 3})
    with pytest.raises(ConfigError) as caught:
        parse_config({"precision": "bf16-pure"})  # TRL trainers: autocast bf16 only
    assert "precision" in caught.value.fields


def test_master_weights_keep_updates_smaller_than_bf16_resolution() -> None:
    # bf16 has 8 bits of mantissa: 1.0 - 1e-4 rounds back to 1.0, every step
    results = {}
    for master in (True, False):
        weight = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
        optimizer = TrainedParameters([weight], lr=1e-4, master_weights=master)
        for _ in range(100):
            (weight.float().sum()).backward()
            optimizer.step(max_grad_norm=1e9)
        assert weight.dtype == torch.bfloat16 and weight.grad is None
        results[master] = weight.detach().float()
    assert torch.all(results[False] == 1.0)  # pure bf16: every update was lost
    assert torch.all(results[True] < 0.995)  # fp32 masters summed 100 updates of 1e-4
    half, full = (
        torch.nn.Parameter(torch.ones(2, dtype=torch.bfloat16)),
        torch.nn.Parameter(torch.ones(2)),
    )
    mixed = TrainedParameters([half, full], 1e-3, master_weights=True)
    assert mixed.masters is not None and mixed.masters[0].dtype == torch.float32
    assert mixed.masters[1] is full  # an fp32 parameter (a peft adapter) is its own master
    (half.float().sum() + full.sum()).backward()
    mixed.step(1e9)
    assert torch.all(full < 1) and torch.all(mixed.masters[0] < 1) and full.grad is None


def test_chunked_logprobs_equal_the_full_log_softmax() -> None:
    torch.manual_seed(0)
    logits = (torch.randn(5, 7, 50) * 3).requires_grad_(True)
    tokens = torch.randint(0, 50, (5, 7))
    full = torch.log_softmax(logits / 0.7, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    (expected_grad,) = torch.autograd.grad((full * torch.arange(7.0)).sum(), logits)
    for chunk in (1, 2, 5, 8):
        chunked, entropy = token_logprobs(logits, tokens, 0.7, chunk_size=chunk, with_entropy=True)
        assert torch.allclose(chunked, full, atol=1e-5), chunk
        assert entropy is not None
        assert torch.allclose(entropy, entropy_from_logits(logits / 0.7), atol=1e-5)
        (grad,) = torch.autograd.grad((chunked * torch.arange(7.0)).sum(), logits)
        assert torch.allclose(grad, expected_grad, atol=1e-6), chunk


def test_micro_batched_rollout_gives_the_one_batch_results(models: dict[str, Any]) -> None:
    for reward in ("same_vocab_reward", "other_vocab_reward"):
        reference = trainer(models, reward).rollout(models["prompts"])
        chunked = trainer(models, reward, rollout_forward_batch_size=3).rollout(models["prompts"])
        assert torch.equal(chunked.input_ids, reference.input_ids)  # the same samples
        for name in ("scores", "values", "logprobs", "ref_logprobs"):
            a, b = getattr(chunked, name), getattr(reference, name)
            assert torch.allclose(a, b, atol=1e-5), (reward, name)
        assert chunked.entropy == pytest.approx(reference.entropy, abs=1e-5)


def first_update(ppo: Any, rollout: Rollout) -> tuple[dict[str, float], list[torch.Tensor]]:
    """The stats of one PPO minibatch and the gradients the optimizers stepped with."""
    grads: list[torch.Tensor] = []
    for optimizer in (ppo.value_optimizer, ppo.policy_optimizer):
        original = optimizer.step

        def step(max_grad_norm: float, optimizer: Any = optimizer, original: Any = original) -> Any:
            grads.extend(p.grad.clone() for p in optimizer.parameters)
            return original(max_grad_norm)

        optimizer.step = step
    generator = torch.Generator().manual_seed(5)
    advantages = torch.randn(rollout.mask.shape, generator=generator) * rollout.mask
    returns = torch.randn(rollout.mask.shape, generator=generator) * rollout.mask
    torch.manual_seed(1)  # the same minibatch order
    stats = ppo._ppo_epochs(rollout, advantages, returns, True)
    return stats, grads


def test_gradient_accumulation_gives_the_one_batch_update(models: dict[str, Any]) -> None:
    one = trainer(models)
    rollout = one.rollout(models["prompts"])
    expected_stats, expected = first_update(one, rollout)
    for steps in (2, 4):
        stats, grads = first_update(trainer(models, gradient_accumulation_steps=steps), rollout)
        assert len(grads) == len(expected)
        for a, b in zip(grads, expected, strict=True):
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-4), steps
        for key, value in expected_stats.items():
            assert stats[key] == pytest.approx(value, abs=1e-6), (steps, key)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(
    models: dict[str, Any],
) -> None:
    plain = trainer(models, lora_rank=4)
    rollout = plain.rollout(models["prompts"])
    expected_stats, expected = first_update(plain, rollout)
    checkpointed = trainer(models, lora_rank=4, gradient_checkpointing=True)
    assert checkpointed.policy.get_base_model().is_gradient_checkpointing
    stats, grads = first_update(checkpointed, rollout)
    for a, b in zip(grads, expected, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
    for key in ("policy_loss", "value_loss", "approx_kl"):
        assert stats[key] == pytest.approx(expected_stats[key], abs=1e-7), key


def test_checkpoint_round_trip_keeps_the_optimizer_state(
    models: dict[str, Any], tmp_path: Path
) -> None:
    ppo = trainer(models, gradient_accumulation_steps=2)
    ppo.train_step(models["prompts"])
    ppo.save_checkpoint(tmp_path)
    resumed = trainer(models, gradient_accumulation_steps=2)
    assert resumed.load_checkpoint(tmp_path)
    saved = ppo.policy_optimizer.optimizer.state_dict()["state"]
    loaded = resumed.policy_optimizer.optimizer.state_dict()["state"]
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k]["exp_avg"], loaded[k]["exp_avg"]) for k in saved)
    assert replace(ppo.config) == resumed.config
