"""A reward model trained outside Preflab, as many teams train one: plain TRL
``RewardTrainer`` on pre-tokenized rows (prompt ids + response ids + EOS), on a Llama-3-shaped
tokenizer without a pad token. Registered with its policy, it scores PPO's samples inside
PPO exactly as its own training pipeline scores the same ids."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.training.families import LLAMA3, WORDS, build_family_model

pytestmark = pytest.mark.slow

PROMPTS = [f"Q: {' '.join(random.Random(i).choices(WORDS, k=4))}\nA:" for i in range(16)]


def pretokenized_rows(tokenizer: Any, n: int) -> list[dict[str, list[int]]]:
    """Rows as a team writes them: prompt ids (the tokenizer's BOS included), the
    response's ids, and the EOS id."""
    rng = random.Random(0)

    def row(prompt: str, answer: str) -> list[int]:
        return [
            *tokenizer(prompt)["input_ids"],
            *tokenizer(answer, add_special_tokens=False)["input_ids"],
            tokenizer.eos_token_id,
        ]

    rows = []
    for i in range(n):
        good = " " + " ".join(rng.choices(("good", "thanks", "yes"), k=3))
        bad = " " + " ".join(rng.choices(("bad", "no", "sad"), k=3))
        prompt = PROMPTS[i % len(PROMPTS)]
        rows.append({"chosen_ids": row(prompt, good), "rejected_ids": row(prompt, bad)})
    return rows


def train_externally(policy: Path, out: Path) -> Any:
    """A reward model from the policy's weights, trained by TRL alone; returns the trainer
    (its data pipeline scores ids as training did)."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(policy)
    assert tokenizer.pad_token is None  # Llama-3 style: TRL pads with EOS
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1)
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(
            output_dir=str(out / "trl"),
            report_to=[],
            max_steps=4,
            per_device_train_batch_size=4,
            per_device_eval_batch_size=4,
            learning_rate=1e-3,
            use_cpu=True,
            bf16=False,  # fp32 throughout, so "the same score" can be exact to float precision
            save_strategy="no",
        ),
        train_dataset=Dataset.from_list(pretokenized_rows(tokenizer, 16)),
        processing_class=tokenizer,
    )
    trainer.train()
    trainer.save_model(str(out / "reward"))
    tokenizer.save_pretrained(out / "reward")
    return trainer


def scores_in_training(trainer: Any, rows: list[list[int]]) -> list[float]:
    """The scores the training pipeline gives ``rows``: TRL's collator and forward pass, as
    in ``RewardTrainer.compute_loss``."""
    from datasets import Dataset

    dataset = Dataset.from_list([{"chosen_ids": r, "rejected_ids": r} for r in rows])
    values: list[float] = []
    trainer.model.eval()
    with torch.no_grad():
        for inputs in trainer.get_eval_dataloader(dataset):
            logits = trainer.model(**inputs).logits.squeeze(-1)
            chosen, _ = torch.chunk(logits, chunks=2)
            values.extend(chosen.tolist())
    return values


@pytest.mark.django_db
def test_an_externally_trained_reward_model_scores_inside_ppo_as_in_training(
    tmp_path: Path, settings: Any
) -> None:
    from training.ml.ppo import PPOTrainer, parse_ppo_config

    policy = build_family_model(LLAMA3, tmp_path / "policy")
    trainer = train_externally(policy, tmp_path)
    settings.PREFLAB_MODEL_ROOTS = [tmp_path]
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    policy_dir, reward_dir = register(policy, "policy"), register(tmp_path / "reward", "reward")

    config = parse_ppo_config(
        {"total_episodes": 16, "batch_size": 16, "mini_batch_size": 16, "max_new_tokens": 8}
    )
    ppo = PPOTrainer(policy_dir=policy_dir, reward_dir=reward_dir, prompts=PROMPTS, config=config)
    assert ppo.score_ids  # same tokenizer: the sampled ids themselves are scored
    seen: list[list[int]] = []
    scored: list[float] = []

    def record(_module: Any, _args: Any, kwargs: dict[str, Any], output: Any) -> None:
        for ids, mask in zip(kwargs["input_ids"], kwargs["attention_mask"], strict=True):
            seen.append(ids[mask.bool()].tolist())
        scored.extend(output.logits[:, 0].tolist())

    hook = ppo.scorer.models[0].register_forward_hook(record, with_kwargs=True)
    try:
        rollout = ppo.rollout(PROMPTS)
    finally:
        hook.remove()
    tokenizer = ppo.tokenizer
    stops = set(ppo.stop_ids)
    responses = rollout.input_ids[:, rollout.query_length :]
    for ids, prompt, row, mask in zip(seen, PROMPTS, responses, rollout.mask, strict=True):
        sampled = [t for t in row[mask.bool()].tolist() if t not in stops]
        # the team's own row layout: prompt ids, the sampled response ids, EOS
        assert ids == [*tokenizer(prompt)["input_ids"], *sampled, tokenizer.eos_token_id]
    # the same ids, the same score as the training pipeline gives them
    assert scored == pytest.approx(scores_in_training(trainer, seen), abs=1e-5)


def register(folder: Path, kind: str) -> Path:
    """Registered as a team would (``manage.py register_model``); the artifact's directory."""
    import io
    import json

    from django.core.management import call_command

    from annotation.services import create_project
    from training.models import ModelArtifact
    from training.registry import artifact_dir

    project = create_project(name=f"byo {kind}", overlap_k=1)
    out = io.StringIO()
    call_command(
        "register_model", str(folder), "--kind", kind, "--project", str(project.id), stdout=out
    )
    artifact = ModelArtifact.objects.get(pk=json.loads(out.getvalue())["artifact"])
    assert artifact.origin == "registered" and artifact_dir(artifact) == folder.resolve()
    return artifact_dir(artifact)
