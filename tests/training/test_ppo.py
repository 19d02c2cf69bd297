"""PPO end to end on the synthetic gold-rule task (tiny models, CPU): it raises the gold
reward significantly with the KL under its target; LoRA, checkpoints and resume, the
missing-EOS penalty, the KL hard stop, config errors and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from scipy.stats import mannwhitneyu

from training.ml.config import ConfigError
from training.ml.policy_eval import sample_with_kl
from training.ml.ppo import KLExplosion, PPOTrainer, parse_ppo_config, train_ppo
from training.ml.prompts import prompt_ids, stop_token_ids
from training.ml.reward import parse_config, train_reward_model
from training.ml.reward_input import training_ids
from training.ml.synthetic import (
    PolicyShape,
    build_synthetic_policy,
    gold_preference_rows,
    gold_score,
    prompt_rows,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Starting policy, a reward model trained on gold-labelled pairs, prompts."""
    root = tmp_path_factory.mktemp("ppo-task")
    policy = build_synthetic_policy(root / "policy", shape=PolicyShape(pretrain_steps=150))
    train = root / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in gold_preference_rows(1200, 1)))
    test = root / "test.jsonl"
    test.write_text("".join(json.dumps(r) + "\n" for r in gold_preference_rows(200, 2)))
    metrics = train_reward_model(
        base=policy,
        train_file=train,
        eval_file=test,
        out=root / "reward",
        config=parse_config(
            {"learning_rate": 3e-3, "epochs": 2, "batch_size": 32, "max_length": 64}
        ),
    )
    assert metrics["eval"]["accuracy"] > 0.85  # the proxy learned the gold rule
    prompts_file = root / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps(r) + "\n" for r in prompt_rows(100, 5)))
    return {
        "root": root,
        "policy": policy,
        "reward": root / "reward",
        "prompts": [r["prompt"] for r in prompt_rows(100, 5)],
        "prompts_file": prompts_file,
    }


def sample_gold(policy: Path, *, n: int = 256, seed: int = 0) -> list[float]:
    """Gold rewards of ``n`` samples of a saved policy (fresh prompts, temperature 0.7)."""
    prompts = [r["prompt"] for r in prompt_rows(n, 99)]
    return [gold_score(t) for t in sample_with_kl(policy, prompts, seed=seed).texts]


def test_ppo_raises_the_gold_reward_with_kl_under_its_target(
    task: dict[str, Any], tmp_path: Path
) -> None:
    config = parse_ppo_config(
        {
            "total_episodes": 1024,
            "learning_rate": 5e-5,
            "kl_coef": 0.1,
            "target_kl": 4.0,
            "kl_horizon": 1000,
        }
    )
    seen: list[int] = []
    result = train_ppo(
        policy=task["policy"],
        reward=task["reward"],
        prompts=task["prompts"],
        out=tmp_path / "out",
        config=config,
        on_step=lambda step, total, metrics: seen.append(step) is not None,
    )
    assert seen == list(range(1, 17))
    history = result["history"]
    assert len(history) == 16
    for key in (
        "reward",
        "reward_normalized",
        "kl",
        "kl_coef",
        "entropy",
        "clip_fraction",
        "approx_kl",
        "value_loss",
        "explained_variance",
        "response_length",
        "eos_rate",
    ):
        assert key in history[-1], key
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # the policy starts at the reference
    assert history[-1]["reward"] > history[0]["reward"] + 0.5  # the proxy reward went up
    final_kl = sum(h["kl"] for h in history[-3:]) / 3
    assert final_kl < config.target_kl

    before = sample_gold(task["policy"], seed=1)
    after = sample_gold(tmp_path / "out", seed=2)
    gain = sum(after) / len(after) - sum(before) / len(before)
    assert gain > 0.15, gain
    assert mannwhitneyu(after, before, alternative="greater").pvalue < 1e-6
    saved = json.loads((tmp_path / "out" / "preflab_metrics.json").read_text())
    assert saved["steps"] == 16
    assert 0 < saved["time_share"]["generation"] < 1


def test_lora_policy_starts_at_its_reference_and_saves_a_plain_model(
    task: dict[str, Any], tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    config = parse_ppo_config(
        {"total_episodes": 32, "batch_size": 16, "mini_batch_size": 8, "lora_rank": 4}
    )
    result = train_ppo(
        policy=task["policy"],
        reward=task["reward"],
        prompts=task["prompts"],
        out=tmp_path / "lora",
        config=config,
    )
    assert result["steps"] == 2
    assert result["history"][0]["kl"] == pytest.approx(0.0, abs=1e-4)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "lora")
    assert not any("lora" in name for name, _ in model.named_parameters())
    start = AutoModelForCausalLM.from_pretrained(task["policy"])
    changed = [
        name
        for (name, a), (_, b) in zip(
            model.named_parameters(), start.named_parameters(), strict=True
        )
        if not torch.equal(a, b)
    ]
    assert changed  # the merged adapters moved the weights


def test_checkpoint_resume_continues_where_the_run_stopped(
    task: dict[str, Any], tmp_path: Path
) -> None:
    config = parse_ppo_config(
        {"total_episodes": 64, "batch_size": 16, "mini_batch_size": 8, "checkpoint_steps": 1}
    )
    checkpoints = tmp_path / "checkpoints"
    first = train_ppo(
        policy=task["policy"],
        reward=task["reward"],
        prompts=task["prompts"],
        out=tmp_path / "first",
        config=config,
        checkpoint_dir=checkpoints,
        on_step=lambda step, total, metrics: step >= 2,  # a cancel after step 2
    )
    assert first["steps"] == 2 and first["stopped_early"]
    assert (checkpoints / "ppo-state.pt").exists()
    assert not (checkpoints / "ppo-state.pt.partial").exists()
    second = train_ppo(
        policy=task["policy"],
        reward=task["reward"],
        prompts=task["prompts"],
        out=tmp_path / "second",
        config=config,
        checkpoint_dir=checkpoints,
    )
    assert second["resumed"]
    assert second["steps"] == 4
    assert [h["step"] for h in second["history"]] == [3, 4]


def test_missing_eos_is_penalized(task: dict[str, Any]) -> None:
    config = parse_ppo_config(
        {"total_episodes": 8, "batch_size": 8, "mini_batch_size": 8, "max_new_tokens": 2}
    )
    prompts = task["prompts"][:8]
    scores = {}
    for penalty in (0.0, 2.5):
        trainer = PPOTrainer(
            policy_dir=task["policy"],
            reward_dir=task["reward"],
            prompts=prompts,
            config=replace(config, missing_eos_penalty=penalty),
        )
        rollout = trainer.rollout(prompts)
        assert not rollout.finished.any()  # two tokens are too few to finish
        assert rollout.mask.sum().item() == 16
        scores[penalty] = rollout.scores
    assert torch.allclose(scores[2.5], scores[0.0] - 2.5)


def test_the_reward_model_scores_the_sampled_ids_exactly_as_it_saw_them_in_training(
    task: dict[str, Any],
) -> None:
    config = parse_ppo_config({"total_episodes": 16, "batch_size": 16, "mini_batch_size": 16})
    prompts = task["prompts"][:16]
    trainer = PPOTrainer(
        policy_dir=task["policy"], reward_dir=task["reward"], prompts=prompts, config=config
    )
    assert trainer.score_ids  # the reward model was trained from the policy: same tokenizer
    seen: list[torch.Tensor] = []
    model = trainer.scorer.models[0]
    hook = model.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append(kwargs["input_ids"].clone()), with_kwargs=True
    )
    try:
        rollout = trainer.rollout(prompts)
    finally:
        hook.remove()
    tokenizer = trainer.tokenizer
    pad = tokenizer.pad_token_id
    end_of_turn = tokenizer.convert_tokens_to_ids("<|end|>")
    rows = [[t for t in row.tolist() if t != pad] for row in torch.cat(seen)]
    content = rollout_content(rollout, tokenizer)
    by_ids = trainer.scorer.score_exchanges(prompts, rollout.texts, content_ids=content)
    by_text = trainer.scorer.score_exchanges(prompts, rollout.texts)
    canonical = 0
    for i, (scored, prompt, text) in enumerate(zip(rows, prompts, rollout.texts, strict=True)):
        # the prompt's ids, the ids the policy sampled (never decoded and re-encoded), and
        # the template's end of turn, as the conversation was written in training
        assert scored == [*prompt_ids(tokenizer, prompt), *content[i], end_of_turn]
        # ... which is what TRL's RewardTrainer tokenized for a conversational row
        trained = training_ids(tokenizer, prompt, [{"role": "assistant", "content": text}])
        if scored == trained:
            canonical += 1
            # the same ids give the same score, whichever way they were built
            assert by_ids.scores.mean[i] == pytest.approx(by_text.scores.mean[i], abs=1e-5)
    assert canonical >= 12  # any other was sampled in a non-canonical tokenization


def rollout_content(rollout: Any, tokenizer: Any) -> list[list[int]]:
    """Each sampled response's ids before its stop token, read from the rollout's tensors."""
    stops = set(stop_token_ids(tokenizer))
    rows = []
    for row, mask in zip(rollout.input_ids[:, rollout.query_length :], rollout.mask, strict=True):
        ids = row[mask.bool()].tolist()
        rows.append(ids[:-1] if ids and ids[-1] in stops else ids)
    return rows


def test_reward_scoring_cuts_long_exchanges_on_the_prompt_side(task: dict[str, Any]) -> None:
    from training.ml.scoring import RewardScorer

    scorer = RewardScorer(task["reward"], max_length=12)
    short, long = [9] * 6 + [21, 22, 23], [9] * 10 + [21, 22, 23]
    scored = scorer.score_rows([short, long])
    assert scored.truncated == 1 and len(scored.scores.mean) == 2
    # the long row is read as its last 12 tokens: the response's end is never cut
    assert scorer.score_rows([long[-12:]]).scores.mean[0] == pytest.approx(
        scored.scores.mean[1], abs=1e-5
    )
    assert scorer.score_rows([short]).truncated == 0


def test_max_approx_kl_stops_every_remaining_epoch_of_the_rollout(task: dict[str, Any]) -> None:
    config = parse_ppo_config(
        {
            "total_episodes": 16,
            "batch_size": 16,
            "mini_batch_size": 4,
            "ppo_epochs": 4,
            "learning_rate": 0.05,
            "max_approx_kl": 1e-9,
            "value_warmup_steps": 0,  # the policy moves in this first step
        }
    )
    prompts = task["prompts"][:16]
    trainer = PPOTrainer(
        policy_dir=task["policy"], reward_dir=task["reward"], prompts=prompts, config=config
    )
    stats = trainer.train_step(prompts)
    # the first epoch's second minibatch already sees a moved policy: nothing runs after it
    assert stats["ppo_epochs_done"] == 1.0
    assert stats["approx_kl"] > 0


def test_the_critic_learns_in_normalized_units_after_a_warm_up_step(
    task: dict[str, Any],
) -> None:
    """Defaults: the first rollout fixes the reward normalization, the value head copied from
    the reward model is rescaled to it once, and that first step trains only the critic."""
    config = parse_ppo_config(
        {"total_episodes": 32, "batch_size": 16, "mini_batch_size": 8, "max_new_tokens": 8}
    )
    prompts = task["prompts"][:16]
    trainer = PPOTrainer(
        policy_dir=task["policy"], reward_dir=task["reward"], prompts=prompts, config=config
    )
    assert trainer.value_from_reward
    before = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
    trainer.train_step(prompts)
    mean, std = trainer.moments.mean, trainer.moments.std
    assert trainer.moments.count == 16
    assert trainer.value.out_scale.item() == pytest.approx(1 / std, rel=1e-4)
    assert trainer.value.out_shift.item() == pytest.approx(-mean / std, rel=1e-4, abs=1e-6)
    # the warm-up step left the policy as it was
    after = trainer.policy.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    trainer.train_step(prompts)
    # the statistics stay fixed, and the head is not rescaled twice
    assert trainer.moments.count == 16 and trainer.moments.mean == mean
    assert trainer.value.out_scale.item() == pytest.approx(1 / std, rel=1e-4)
    assert any(not torch.equal(before[k], v) for k, v in trainer.policy.state_dict().items())


def test_kl_hard_stop_ends_the_run(task: dict[str, Any], tmp_path: Path) -> None:
    config = parse_ppo_config(
        {
            "total_episodes": 64,
            "batch_size": 16,
            "mini_batch_size": 4,
            "learning_rate": 0.01,
            "kl_hard_stop": 0.5,
            "max_approx_kl": 0.0,
        }
    )
    with pytest.raises(KLExplosion, match="kl_hard_stop"):
        train_ppo(
            policy=task["policy"],
            reward=task["reward"],
            prompts=task["prompts"],
            out=tmp_path / "exploded",
            config=config,
        )
    assert not (tmp_path / "exploded").exists()  # nothing saved from an exploded policy


def test_config_errors_name_every_bad_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_ppo_config({"kl_estimator": "k2", "gamma": 2, "ppo_epochs": "four", "colour": 1})
    assert set(caught.value.fields) == {"kl_estimator", "gamma", "ppo_epochs", "colour"}
    with pytest.raises(ConfigError) as caught:
        parse_ppo_config({"batch_size": 8, "mini_batch_size": 16})
    assert "mini_batch_size" in caught.value.fields
    assert parse_ppo_config({}).steps == 16


def test_cli_trains_and_rejects_bad_configs(task: dict[str, Any], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cliprange": 3}))
    args = [
        sys.executable,
        "-m",
        "training.ml.ppo",
        "--policy",
        str(task["policy"]),
        "--reward",
        str(task["reward"]),
        "--prompts",
        str(task["prompts_file"]),
        "--out",
        str(tmp_path / "cli"),
    ]
    refused = subprocess.run(
        [*args, "--config", str(bad)], cwd=REPO, capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "cliprange" in refused.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"total_episodes": 16, "batch_size": 8, "mini_batch_size": 8}))
    done = subprocess.run(
        [*args, "--config", str(good)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout[done.stdout.index("{\n") :])["metrics"]["steps"] == 2
    assert (tmp_path / "cli" / "model.safetensors").exists()
