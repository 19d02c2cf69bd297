"""Checkpoints shaped like the families teams bring (Llama-3, Qwen2, Gemma tokenizers and
architectures, built here by :mod:`tests.training.families`): the reward model reads at
scoring exactly the ids it read in training, for string and conversational rows, and every
training path runs on them — a PPO step, a GRPO step, a DPO step, generation and the reward
model's evaluation — including Llama-3's tokenizer without a pad token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.training.families import FAMILIES, WORDS, build_family_model
from training.ml.prompts import Prompt, prompt_ids, stop_token_ids
from training.ml.reward_input import training_ids, turn_end_ids

pytestmark = pytest.mark.slow


def preference_rows(n: int, *, conversational: bool, seed: int) -> list[dict[str, Any]]:
    """TRL-format rows: answers with more "good" words are chosen."""
    import random

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        question = " ".join(rng.choice(WORDS) for _ in range(4))
        good = " ".join(rng.choice(("good", "thanks", "yes")) for _ in range(3))
        bad = " ".join(rng.choice(("bad", "no", "sad")) for _ in range(3))
        if conversational:
            rows.append(
                {
                    "prompt": [{"role": "user", "content": question}],
                    "chosen": [{"role": "assistant", "content": good}],
                    "rejected": [{"role": "assistant", "content": bad}],
                }
            )
        else:
            rows.append(
                {"prompt": f"Q: {question}\nA:", "chosen": f" {good}", "rejected": f" {bad}"}
            )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A family's tiny policy, and a reward model trained from it by our reward training
    (two steps on conversational rows, evaluated on held-out rows)."""
    from training.ml.reward import parse_config, train_reward_model

    name = request.param
    root = tmp_path_factory.mktemp(name)
    policy = build_family_model(FAMILIES[name], root / "policy")
    metrics = train_reward_model(
        base=policy,
        train_file=write_jsonl(
            root / "train.jsonl", preference_rows(16, conversational=True, seed=1)
        ),
        eval_file=write_jsonl(root / "eval.jsonl", preference_rows(8, conversational=True, seed=2)),
        out=root / "reward",
        config=parse_config({"max_steps": 2, "batch_size": 4, "max_length": 128}),
    )
    return {
        "name": name,
        "root": root,
        "policy": policy,
        "reward": root / "reward",
        "metrics": metrics,
    }


def conversations(n: int, seed: int = 3) -> list[Prompt]:
    return [r["prompt"] for r in preference_rows(n, conversational=True, seed=seed)]


def trl_training_ids(reward_dir: Path, rows: list[dict[str, Any]], out: Path) -> list[list[int]]:
    """The ``chosen_ids`` TRL's RewardTrainer prepares from ``rows`` with the reward model's
    tokenizer as saved (no pad token added by us: TRL picks its own, as for any team)."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    trainer = RewardTrainer(
        model=AutoModelForSequenceClassification.from_pretrained(reward_dir, num_labels=1),
        args=RewardConfig(output_dir=str(out), report_to=[], max_length=256, use_cpu=True),
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(reward_dir),
    )
    return [list(ids) for ids in trainer.train_dataset["chosen_ids"]]


def capture_inputs(model: Any) -> tuple[list[list[int]], Any]:
    """Every row of token ids ``model`` is called with (right padding removed)."""
    rows: list[list[int]] = []

    def hook(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        for ids, mask in zip(kwargs["input_ids"], kwargs["attention_mask"], strict=True):
            rows.append(ids[mask.bool()].tolist())

    return rows, model.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("conversational", [True, False], ids=["conversation", "string"])
def test_scoring_reads_the_ids_and_the_position_reward_training_read(
    family: dict, conversational: bool, tmp_path: Path
) -> None:
    from trl.trainer.reward_trainer import DataCollatorForPreference

    from training.ml.scoring import RewardScorer

    rows = preference_rows(6, conversational=conversational, seed=4)
    trained = trl_training_ids(family["reward"], rows, tmp_path)
    scorer = RewardScorer(family["reward"])
    tokenizer = scorer.tokenizer
    prompts = [r["prompt"] for r in rows]
    # from the text, through the reward model's tokenizer and template
    assert scorer.exchange_ids(prompts, [r["chosen"] for r in rows]) == trained
    # from sampled ids: the prompt as the policy saw it, then the response, then the ending
    ending = list(turn_end_ids(tokenizer) or []) if conversational else [tokenizer.eos_token_id]
    content = []
    for prompt, ids in zip(prompts, trained, strict=True):
        query = prompt_ids(tokenizer, prompt)
        assert ids[: len(query)] == query and ids[len(ids) - len(ending) :] == ending
        content.append(ids[len(query) : len(ids) - len(ending)])
    assert scorer.exchange_ids(prompts, ["unused"] * len(rows), content) == trained
    if tokenizer.bos_token_id is not None:  # special tokens exactly once
        assert all(ids.count(tokenizer.bos_token_id) == 1 for ids in trained)
    # ... and the score is read where training read it: the collator's padding, the head
    collated = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(
        [{"chosen_ids": ids, "rejected_ids": ids} for ids in trained]
    )
    model = scorer.models[0]
    with torch.no_grad():
        logits = model(
            input_ids=collated["input_ids"], attention_mask=collated["attention_mask"]
        ).logits[: len(trained), 0]
    assert scorer.score_rows(trained, batch_size=4).scores.mean == pytest.approx(
        logits.tolist(), abs=1e-5
    )


def test_a_ppo_step_scores_its_samples_in_the_training_form(family: dict) -> None:
    from training.ml.ppo import PPOTrainer, parse_ppo_config

    prompts = conversations(8)
    config = parse_ppo_config(
        {"total_episodes": 8, "batch_size": 8, "mini_batch_size": 4, "max_new_tokens": 6}
    )
    trainer = PPOTrainer(
        policy_dir=family["policy"], reward_dir=family["reward"], prompts=prompts, config=config
    )
    assert trainer.score_ids
    seen, hook = capture_inputs(trainer.scorer.models[0])
    try:
        metrics = trainer.train_step(prompts)
    finally:
        hook.remove()
    assert all(torch.isfinite(torch.tensor(list(metrics.values()))))
    tokenizer = trainer.tokenizer
    ending = list(turn_end_ids(tokenizer) or [])
    assert ending and len(seen) == len(prompts)
    for ids, prompt in zip(seen, prompts, strict=True):
        query = prompt_ids(tokenizer, prompt)
        assert ids[: len(query)] == query and ids[len(ids) - len(ending) :] == ending


def test_a_ppo_step_against_another_familys_reward_model_reads_its_template(
    family: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A reward model with another tokenizer reads the decoded exchange through its own
    tokenizer and chat template (the critic then comes from the policy)."""
    from training.ml.ppo import PPOTrainer, parse_ppo_config
    from training.ml.reward import parse_config, train_reward_model

    other = {"llama3": "qwen2", "qwen2": "gemma", "gemma": "llama3"}[family["name"]]
    root = tmp_path_factory.mktemp(f"{family['name']}-{other}")
    base = build_family_model(FAMILIES[other], root / "base", seed=1)
    train_reward_model(
        base=base,
        train_file=write_jsonl(root / "t.jsonl", preference_rows(8, conversational=True, seed=5)),
        eval_file=None,
        out=root / "reward",
        config=parse_config({"max_steps": 1, "batch_size": 4}),
    )
    prompts = conversations(8, seed=6)
    config = parse_ppo_config(
        {"total_episodes": 8, "batch_size": 8, "mini_batch_size": 8, "max_new_tokens": 6}
    )
    trainer = PPOTrainer(
        policy_dir=family["policy"], reward_dir=root / "reward", prompts=prompts, config=config
    )
    assert not trainer.score_ids
    seen, hook = capture_inputs(trainer.scorer.models[0])
    try:
        rollout = trainer.rollout(prompts)
    finally:
        hook.remove()
    rm_tokenizer = trainer.scorer.tokenizer
    assert seen == [
        training_ids(rm_tokenizer, p, [{"role": "assistant", "content": t}])
        for p, t in zip(prompts, rollout.texts, strict=True)
    ]


def test_grpo_scores_completion_ids_as_trained_and_a_step_runs(
    family: dict, tmp_path: Path
) -> None:
    from training.ml.policy_trl import parse_grpo_config, reward_function, train_grpo
    from training.ml.tokenization import load_tokenizer

    tokenizer = load_tokenizer(family["policy"])
    fn = reward_function(
        family["reward"], tokenizer=tokenizer, ensemble_lambda=1.0, missing_eos_penalty=1.0
    )
    prompts = conversations(4, seed=7)
    answers = ["good thanks yes", "bad no", "the cat sat", "yes yes"]
    stop = stop_token_ids(tokenizer)[-1]
    completion_ids = [tokenizer(a, add_special_tokens=False)["input_ids"] + [stop] for a in answers]
    seen, hook = capture_inputs(fn.scorer.models[0])
    try:
        fn(
            prompts=prompts,
            completions=[[{"role": "assistant", "content": a}] for a in answers],
            completion_ids=completion_ids,
        )
    finally:
        hook.remove()
    assert seen == [
        training_ids(tokenizer, p, [{"role": "assistant", "content": a}])
        for p, a in zip(prompts, answers, strict=True)
    ]
    prompts_file = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": p} for p in prompts])
    config = parse_grpo_config(
        {"total_episodes": 8, "batch_size": 8, "num_generations": 4, "max_new_tokens": 6}
    )
    metrics = train_grpo(
        policy=family["policy"],
        reward=family["reward"],
        prompts_file=prompts_file,
        out=tmp_path / "grpo",
        config=config,
    )
    assert metrics["history"] and (tmp_path / "grpo" / "config.json").exists()


def test_a_dpo_step_runs(family: dict, tmp_path: Path) -> None:
    from training.ml.policy_trl import parse_dpo_config, train_dpo

    train = write_jsonl(tmp_path / "dpo.jsonl", preference_rows(8, conversational=True, seed=8))
    metrics = train_dpo(
        policy=family["policy"],
        train_file=train,
        eval_file=None,
        out=tmp_path / "dpo",
        config=parse_dpo_config({"batch_size": 4, "max_steps": 1, "max_length": 128}),
    )
    assert metrics["history"] and (tmp_path / "dpo" / "config.json").exists()


def test_generation_scores_candidates_in_the_training_form_and_evaluation_ran(
    family: dict,
) -> None:
    from training.ml.generation import SamplingConfig, generate_candidates, score_candidates
    from training.ml.tokenization import load_tokenizer

    prompts = conversations(3, seed=9)
    candidates = generate_candidates(
        family["policy"], prompts, SamplingConfig(n=2, max_new_tokens=6, backend="transformers")
    )
    assert [len(group) for group in candidates] == [2, 2, 2]
    from training.ml.scoring import RewardScorer

    scores = score_candidates(family["reward"], prompts, candidates)
    assert all(len(group) == 2 for group in scores)
    tokenizer = load_tokenizer(family["policy"])
    ending = list(turn_end_ids(tokenizer) or [])
    expected = RewardScorer(family["reward"]).score_rows(
        [
            [*prompt_ids(tokenizer, p), *c.token_ids, *ending]
            for p, group in zip(prompts, candidates, strict=True)
            for c in group
        ]
    )
    flat = [s.reward for group in scores for s in group]
    assert flat == pytest.approx(expected.scores.mean, abs=1e-5)
    # the reward model's held-out evaluation ran on the family's template
    evaluation = family["metrics"]["eval"]
    assert evaluation["n"] == 8 and evaluation["accuracy"] is not None
