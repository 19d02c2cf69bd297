"""Reward-model training on TRL-format JSONL, standalone (no Django), with evaluation."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from training.ml.reward import ConfigError, parse_config
from training.ml.tiny import build_causal_lm, build_tokenizer

REPO = Path(__file__).resolve().parents[2]
WORDS = "the a cat dog tree house river stone light cloud green red blue small large".split()


def synthetic_rows(n: int, seed: int) -> list[dict]:
    """A hidden rule a tiny model can learn: the answer that says "thanks" is better."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        prompt = " ".join(rng.choices(WORDS, k=5)) + "?"
        body = " ".join(rng.choices(WORDS, k=6))
        good, bad = f"{body} thanks", f"{body} whatever"
        strength = rng.choice([1, 2, 3, 4])
        rows.append(
            {
                "prompt": [{"role": "user", "content": prompt}],
                "chosen": [{"role": "assistant", "content": good}],
                "rejected": [{"role": "assistant", "content": bad}],
                "margin": {4: 1.0, 3: 0.667, 2: 0.333, 1: 0.0}[strength],
                "strength": strength,
                "agreement": rng.choice([1.0, 0.6667]),
                "comparison_id": i,
            }
        )
    return rows


def tiny_base_model(tmp_path: Path) -> Path:
    """A tiny Llama with a tokenizer trained on texts of the synthetic task."""
    texts = [
        r["prompt"][0]["content"] + " " + r["chosen"][0]["content"] + " whatever"
        for r in synthetic_rows(200, 3)
    ]
    tokenizer = build_tokenizer(texts, tmp_path / "tok", vocab_size=200)
    return build_causal_lm(tokenizer, tmp_path / "base", hidden=32, layers=1, heads=2)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"learning_rate": -1, "batch_size": "many", "colour": 1})
    assert set(caught.value.fields) == {"learning_rate", "batch_size", "colour"}
    assert parse_config({"epochs": 2}).epochs == 2.0


@pytest.mark.slow
def test_cli_trains_a_tiny_reward_model_to_high_held_out_accuracy(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", synthetic_rows(400, 1))
    held_out = write_jsonl(tmp_path / "eval.jsonl", synthetic_rows(100, 2))
    base = tiny_base_model(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"learning_rate": 0.003, "epochs": 3, "batch_size": 16, "max_length": 256})
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.ml.reward",
            "--base",
            str(base),
            "--train",
            str(train),
            "--eval",
            str(held_out),
            "--out",
            str(tmp_path / "rm"),
            "--config",
            str(config),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "rm" / "preflab_metrics.json").read_text())
    assert '"metrics"' in result.stdout
    evaluation = metrics["eval"]
    assert evaluation["accuracy"] >= 0.9, evaluation
    assert evaluation["n"] == 100
    assert sum(v["n"] for v in evaluation["by_strength"].values()) == 100
    assert set(evaluation["by_agreement"]) == {"unanimous", "majority"}
    assert evaluation["mean_reward_margin"] > 0

    from transformers import AutoModelForSequenceClassification

    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm")
    assert loaded.config.num_labels == 1
    assert (tmp_path / "rm" / "preflab_metrics.json").exists()


def test_cli_rejects_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"learning_rate": 5}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.ml.reward",
            "--base",
            str(tmp_path),
            "--train",
            str(tmp_path / "x.jsonl"),
            "--out",
            str(tmp_path / "o"),
            "--config",
            str(config),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "learning_rate" in result.stderr


@pytest.mark.slow
def test_ensemble_members_on_bootstrap_resamples_and_conservative_scores(tmp_path: Path) -> None:
    from training.ml.reward import train_reward_ensemble
    from training.ml.scoring import RewardScorer

    train = write_jsonl(tmp_path / "train.jsonl", synthetic_rows(240, 1))
    held_out = write_jsonl(tmp_path / "eval.jsonl", synthetic_rows(60, 2))
    base = tiny_base_model(tmp_path)
    config = parse_config(
        {
            "learning_rate": 0.003,
            "epochs": 2,
            "batch_size": 16,
            "max_length": 256,
            "ensemble_size": 3,
            "ensemble_lambda": 1.0,
        }
    )
    metrics = train_reward_ensemble(
        base=base, train_file=train, eval_file=held_out, out=tmp_path / "ens", config=config
    )
    assert metrics["ensemble_size"] == 3 and len(metrics["members"]) == 3
    losses = {m["train_loss"] for m in metrics["members"]}
    assert len(losses) == 3  # different resamples and seeds train different members
    assert metrics["eval"]["accuracy"] >= 0.8
    scorer = RewardScorer(tmp_path / "ens", max_length=256)
    assert scorer.size == 3
    scores = scorer.score_exchanges(["a cat", "a cat"], [" thanks", " whatever"]).scores
    assert all(s > 0 for s in scores.std)
    # members are standardized on the training pairs: centered there, at a common scale
    assert scorer.standardization is not None and len(scorer.standardization.means) == 3
    from training.ml.reward import pair_ids

    reference = [
        pair_ids(scorer.tokenizer, r, side)
        for r in synthetic_rows(240, 1)
        for side in ("chosen", "rejected")
    ]
    raw = scorer.score_rows(reference, standardize=False).scores.members
    centered = scorer.score_rows(reference).scores.members
    scale = sum(scorer.standardization.stds) / 3
    for member, before in zip(centered, raw, strict=True):
        mean = sum(member) / len(member)
        std = (sum((v - mean) ** 2 for v in member) / len(member)) ** 0.5
        assert mean == pytest.approx(0.0, abs=1e-4) and std == pytest.approx(scale, rel=1e-3)
        assert before != pytest.approx(member, abs=1e-3)  # the raw members were not
    conservative = scores.conservative(1.0)
    assert all(c < m for c, m in zip(conservative, scores.mean, strict=True))


@pytest.mark.slow
def test_lora_training_saves_a_plain_merged_model(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from training.ml.reward import train_reward_model

    train = write_jsonl(tmp_path / "train.jsonl", synthetic_rows(64, 1))
    texts = [r["chosen"][0]["content"] for r in synthetic_rows(100, 3)]
    base = build_causal_lm(
        build_tokenizer(texts, tmp_path / "tok", vocab_size=200),
        tmp_path / "base",
        hidden=32,
        layers=1,
        heads=2,
    )
    config = parse_config({"lora_rank": 4, "max_steps": 2, "batch_size": 8, "max_length": 256})
    metrics = train_reward_model(
        base=base, train_file=train, eval_file=None, out=tmp_path / "rm", config=config
    )
    assert metrics["steps"] == 2
    assert not (tmp_path / "rm" / "adapter_config.json").exists()
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm")
    assert not any("lora" in name for name, _ in model.named_parameters())


def _unordered(rows: list[dict], label: str) -> list[dict]:
    """The rows again as ties / both-bad, sides reversed: read as preferences they would
    teach the opposite rule."""
    return [r | {"chosen": r["rejected"], "rejected": r["chosen"], "label": label} for r in rows]


def test_ties_and_both_bad_rows_do_not_move_the_reward_model(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.ml.reward import pair_ids, score, train_reward_model

    base = tiny_base_model(tmp_path)
    ordered = [r | {"label": "A"} for r in synthetic_rows(48, 4)]
    config = parse_config({"learning_rate": 0.003, "epochs": 1, "batch_size": 8})
    plain = write_jsonl(tmp_path / "plain.jsonl", ordered)
    mixed = write_jsonl(
        tmp_path / "mixed.jsonl",
        ordered[:24]
        + _unordered(synthetic_rows(40, 5), "tie")
        + ordered[24:]
        + _unordered(synthetic_rows(20, 6), "both_bad"),
    )
    first = train_reward_model(
        base=base, train_file=plain, eval_file=None, out=tmp_path / "a", config=config
    )
    second = train_reward_model(
        base=base, train_file=mixed, eval_file=None, out=tmp_path / "b", config=config
    )
    assert first["dropped_rows"] == {"tie": 0, "both_bad": 0} and first["pairs"] == 48
    assert second["dropped_rows"] == {"tie": 40, "both_bad": 20} and second["pairs"] == 48

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "a")
    probe = synthetic_rows(16, 7)
    rows = [pair_ids(tokenizer, r, side) for r in probe for side in ("chosen", "rejected")]
    scores = [
        score(AutoModelForSequenceClassification.from_pretrained(tmp_path / d), tokenizer, rows)
        for d in ("a", "b")
    ]
    # the same model, to float precision: 60 reversed ties / both-bad rows changed nothing
    assert scores[0] == pytest.approx(scores[1], abs=1e-5)


def test_a_file_of_only_ties_is_a_config_error_for_reward_and_dpo(tmp_path: Path) -> None:
    from training.ml.policy_trl import parse_dpo_config, train_dpo
    from training.ml.reward import train_reward_model

    ties = write_jsonl(tmp_path / "ties.jsonl", _unordered(synthetic_rows(6, 8), "tie"))
    with pytest.raises(ConfigError, match="no row states a preference"):
        train_reward_model(
            base=tmp_path,
            train_file=ties,
            eval_file=None,
            out=tmp_path / "rm",
            config=parse_config({}),
        )
    with pytest.raises(ConfigError, match="no row states a preference"):
        train_dpo(
            policy=tmp_path,
            train_file=ties,
            eval_file=None,
            out=tmp_path / "dpo",
            config=parse_dpo_config({}),
        )
    assert not (tmp_path / "rm").exists() and not (tmp_path / "dpo").exists()
