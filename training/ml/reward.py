"""Reward-model training on TRL-format preference JSONL, with evaluation by strength and
agreement level. Plain Python (no Django): the Celery task and the CLI call the same code.

    python -m training.ml.reward --base DIR --train FILE.jsonl --eval FILE.jsonl --out DIR \\
        [--config config.json]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.ml.checkpoints import resume_point
from training.ml.config import (
    PRECISION_HELP,
    PRECISION_MODES,
    SEED_CHECK,
    Check,
    ConfigError,
    parse_dataclass,
    resolve_precision,
)
from training.ml.lora import lora_config
from training.ml.preferences import is_ordered, ordered_rows
from training.ml.reward_input import fit_length, training_ids
from training.ml.scoring import score_rows
from training.ml.tokenization import load_tokenizer
from training.ml.trainer_save import refuse_sharded_lora, save_trained

PRECISION_CHECK: Check = (lambda v: v in PRECISION_MODES, "must be auto, bf16 or fp32")

STRENGTH_NAMES = {4: "significantly", 3: "better", 2: "slightly", 1: "negligibly"}
SIDES = ("chosen", "rejected")
STANDARDIZATION_ROWS = 512  # training pairs whose scores fix each ensemble member's offset/scale


@dataclass(frozen=True)
class RewardTrainingConfig:
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the training split."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many steps (-1: off)."})
    batch_size: int = field(default=16, metadata={"help": "Pairs per device per step."})
    max_length: int = field(
        default=512,
        metadata={"help": "Longest pair kept (TRL drops longer training pairs; eval truncates)."},
    )
    use_margin: bool = field(
        default=True, metadata={"help": "Bradley–Terry with the rows' margin column."}
    )
    center_rewards_coefficient: float = field(
        default=0.01, metadata={"help": "Pull mean reward to 0 (0 disables)."}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for memory on large models."}
    )
    checkpoint_steps: int = field(
        default=200, metadata={"help": "Save a resumable checkpoint every this many steps."}
    )
    logging_steps: int = field(default=10, metadata={"help": "Log metrics every N steps."})
    lora_rank: int = field(
        default=0, metadata={"help": "Train LoRA adapters of this rank (0: full fine-tuning)."}
    )
    ensemble_size: int = field(
        default=1, metadata={"help": "Members trained on bootstrap resamples (1: one model)."}
    )
    ensemble_lambda: float = field(
        default=1.0, metadata={"help": "Conservative score = mean − λ·std over the members."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of initialisation and shuffling."})
    precision: str = field(
        default="auto",
        metadata={"help": PRECISION_HELP + "(Trainer's bf16 autocast; bf16-pure is PPO only.)"},
    )


REWARD_CHECKS: dict[str, Check] = {
    "learning_rate": lambda v: 0 < v < 1,
    "epochs": lambda v: 0 < v <= 1000,
    "batch_size": lambda v: 1 <= v <= 4096,
    "max_length": lambda v: 8 <= v <= 131072,
    "center_rewards_coefficient": lambda v: 0 <= v <= 10,
    "max_steps": lambda v: v == -1 or v >= 1,
    "checkpoint_steps": lambda v: v >= 1,
    "logging_steps": lambda v: v >= 1,
    "ensemble_size": lambda v: 1 <= v <= 16,
    "lora_rank": lambda v: 0 <= v <= 1024,
    "ensemble_lambda": lambda v: 0 <= v <= 10,
    "precision": PRECISION_CHECK,
    "seed": SEED_CHECK,
}


def parse_config(raw: dict[str, Any]) -> RewardTrainingConfig:
    """Validate a JSON object into a config; every problem is named by field."""
    return parse_dataclass(RewardTrainingConfig, raw, REWARD_CHECKS)


def use_bf16(precision: str) -> bool:
    """Whether a TRL trainer runs with ``bf16=True`` (Trainer autocast: fp32 master weights
    and Adam state, bf16 compute): ``auto`` on a CUDA device that supports bf16, or ``bf16``;
    ``bf16`` without such a device is a :class:`ConfigError`."""
    return resolve_precision(precision) == "bf16"


def train_reward_model(
    *,
    base: Path,
    train_file: Path,
    eval_file: Path | None,
    out: Path,
    config: RewardTrainingConfig,
    callbacks: list[Any] | None = None,
    checkpoint_dir: Path | None = None,
) -> dict[str, Any]:
    """Train, save the model (``from_pretrained`` loads ``out``) and return its metrics.

    With ``checkpoint_dir`` a resumable checkpoint is saved there every ``checkpoint_steps``
    and a run that finds one resumes from it (:func:`training.ml.checkpoints.resume_point`)."""
    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    torch.manual_seed(config.seed)
    work = Path(tempfile.mkdtemp(prefix="reward-"))
    try:
        files = {"train": str(train_file)} | ({"eval": str(eval_file)} if eval_file else {})
        data = datasets.load_dataset("json", data_files=files, cache_dir=str(work / "cache"))
        train, dropped = ordered_rows(data["train"])
        if len(train) == 0:
            raise ConfigError({"train": "no row states a preference (only ties / both bad)"})
        if not config.use_margin and "margin" in train.column_names:
            train = train.remove_columns("margin")
        tokenizer = load_tokenizer(base)
        # fp32 weights whatever the checkpoint's dtype: under bf16 the Trainer's autocast
        # computes in bf16 and these stay the fp32 master weights
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=1, dtype=torch.float32
        )
        model.config.pad_token_id = tokenizer.pad_token_id
        if config.lora_rank:
            from peft import get_peft_model

            model = get_peft_model(model, lora_config(config.lora_rank, "SEQ_CLS"))
        bf16 = use_bf16(config.precision)
        args = RewardConfig(
            output_dir=str(checkpoint_dir or work / "checkpoints"),
            learning_rate=config.learning_rate,
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size,
            max_length=config.max_length,
            center_rewards_coefficient=config.center_rewards_coefficient or None,
            seed=config.seed,
            gradient_checkpointing=config.gradient_checkpointing,
            bf16=bf16,
            use_cpu=not torch.cuda.is_available(),
            report_to=[],
            logging_steps=config.logging_steps,
            save_strategy="steps" if checkpoint_dir else "no",
            save_steps=config.checkpoint_steps,
            save_total_limit=2,
            eval_strategy="no",
            disable_tqdm=True,
        )
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=train,
            processing_class=tokenizer,
            callbacks=callbacks or [],
        )
        refuse_sharded_lora(trainer, bool(config.lora_rank))
        resume = resume_point(checkpoint_dir)
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        trained = save_trained(trainer, out, lora=bool(config.lora_rank))
        tokenizer.save_pretrained(out)
        metrics: dict[str, Any] = {
            "train_loss": round(float(result.training_loss), 6),
            "steps": int(result.global_step),
            "precision": "bf16" if bf16 else "fp32",
            "pairs": len(train),
            "dropped_rows": dropped,
        }
        if eval_file is not None:
            metrics["eval"] = evaluate_reward_model(
                trained,
                tokenizer,
                [r for r in data["eval"] if is_ordered(r)],
                max_length=config.max_length,
            )
        (out / "preflab_metrics.json").write_text(json.dumps(metrics, indent=2))
        return metrics
    finally:
        shutil.rmtree(work, ignore_errors=True)


def train_reward_ensemble(
    *,
    base: Path,
    train_file: Path,
    eval_file: Path | None,
    out: Path,
    config: RewardTrainingConfig,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """K members, each on a bootstrap resample of the training rows (seeded), saved as
    ``out/member-i`` with a manifest; evaluated as mean and as conservative mean − λ·std.
    The manifest also holds each member's mean and std of its scores on (up to 512 of) the
    training pairs, with which :class:`RewardScorer` standardizes the members."""
    import random
    from dataclasses import replace

    from training.ml.scoring import ENSEMBLE_MANIFEST, RewardScorer, Standardization

    rows = train_file.read_text().splitlines()
    members: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="ensemble-"))
    try:
        for i in range(config.ensemble_size):
            rng = random.Random(config.seed * 1000 + i)  # noqa: S311 - resampling
            sample = work / f"bootstrap-{i}.jsonl"
            sample.write_text("\n".join(rng.choices(rows, k=len(rows))) + "\n")
            member_config = replace(config, seed=config.seed + i, ensemble_size=1)
            metrics = train_reward_model(
                base=base,
                train_file=sample,
                eval_file=eval_file,
                out=out / f"member-{i}",
                config=member_config,
                callbacks=callbacks,
            )
            members.append(metrics)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    manifest = {
        "members": [f"member-{i}" for i in range(config.ensemble_size)],
        "lambda": config.ensemble_lambda,
    }
    (out / ENSEMBLE_MANIFEST).write_text(json.dumps(manifest))
    reference = [json.loads(line) for line in rows[:STANDARDIZATION_ROWS] if line.strip()]
    unstandardized = RewardScorer(out, max_length=config.max_length)
    raw = unstandardized.score_rows(
        [pair_ids(unstandardized.tokenizer, r, side) for r in reference for side in SIDES],
        standardize=False,
    )
    manifest["standardization"] = asdict(Standardization.fit(raw.scores.members))
    (out / ENSEMBLE_MANIFEST).write_text(json.dumps(manifest))
    result: dict[str, Any] = {"members": members, "ensemble_size": config.ensemble_size}
    if eval_file is not None:
        import datasets

        cache = Path(tempfile.mkdtemp(prefix="ensemble-eval-"))
        try:
            eval_rows = [
                r
                for r in datasets.load_dataset(
                    "json", data_files=str(eval_file), cache_dir=str(cache)
                )["train"]
                if is_ordered(r)
            ]
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        scorer = RewardScorer(out, max_length=config.max_length)
        chosen = scorer.score_rows([pair_ids(scorer.tokenizer, r, "chosen") for r in eval_rows])
        rejected = scorer.score_rows([pair_ids(scorer.tokenizer, r, "rejected") for r in eval_rows])
        lam = config.ensemble_lambda

        def accuracy(c: list[float], r: list[float]) -> float:
            return round(sum(1 for a, b in zip(c, r, strict=True) if a > b) / len(c), 4)

        result["eval"] = {
            "n": len(eval_rows),
            "accuracy": accuracy(chosen.scores.mean, rejected.scores.mean),
            "accuracy_conservative": accuracy(chosen.combined(lam), rejected.combined(lam)),
            "mean_std": round(
                sum(chosen.scores.std + rejected.scores.std) / (2 * len(eval_rows)), 4
            ),
        }
    (out / "preflab_metrics.json").write_text(json.dumps(result, indent=2))
    return result


def pair_ids(tokenizer: Any, row: dict[str, Any], side: str) -> list[int]:
    """The ids TRL's reward training reads for one side of a TRL-format row."""
    return training_ids(tokenizer, row["prompt"], row[side])


def score(
    model: Any, tokenizer: Any, rows: list[list[int]], *, max_length: int = 512
) -> list[float]:
    """One reward model's score of rows of token ids, each cut to ``max_length`` from the
    left (the prompt side) as :class:`training.ml.scoring.RewardScorer` cuts them."""
    bos = tokenizer.bos_token_id
    fitted = [fit_length(r, max_length, bos)[0] for r in rows]
    return score_rows(model, tokenizer.pad_token_id, fitted)


def evaluate_reward_model(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]], *, max_length: int = 512
) -> dict[str, Any]:
    """Held-out accuracy overall, by strength level (as Llama-2's table) and by agreement
    level (unanimous or not), with the mean reward margin."""
    chosen = score(
        model, tokenizer, [pair_ids(tokenizer, r, "chosen") for r in rows], max_length=max_length
    )
    rejected = score(
        model, tokenizer, [pair_ids(tokenizer, r, "rejected") for r in rows], max_length=max_length
    )
    diffs = [c - r for c, r in zip(chosen, rejected, strict=True)]

    def accuracy(index: list[int]) -> dict[str, Any]:
        if not index:
            return {"n": 0, "accuracy": None}
        right = sum(1 for i in index if diffs[i] > 0)
        return {"n": len(index), "accuracy": round(right / len(index), 4)}

    all_rows = list(range(len(rows)))
    by_strength = {
        name: accuracy([i for i in all_rows if rows[i].get("strength") == level])
        for level, name in STRENGTH_NAMES.items()
    }
    by_agreement = {
        "unanimous": accuracy([i for i in all_rows if rows[i].get("agreement", 1.0) >= 1.0]),
        "majority": accuracy([i for i in all_rows if rows[i].get("agreement", 1.0) < 1.0]),
    }
    mean_margin = sum(diffs) / len(diffs) if diffs else math.nan
    return {
        **accuracy(all_rows),
        "mean_reward_margin": round(mean_margin, 4) if diffs else None,
        "by_strength": by_strength,
        "by_agreement": by_agreement,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--base", type=Path, required=True, help="Model directory to start from.")
    parser.add_argument("--train", type=Path, required=True, help="TRL-format JSONL.")
    parser.add_argument("--eval", type=Path, help="Held-out JSONL.")
    parser.add_argument("--out", type=Path, required=True, help="Where the model is saved.")
    parser.add_argument("--config", type=Path, help="JSON file of RewardTrainingConfig fields.")
    args = parser.parse_args(argv)
    raw = json.loads(args.config.read_text()) if args.config else {}
    try:
        config = parse_config(raw)
    except ConfigError as exc:
        parser.error(f"bad config: {exc}")
    train = train_reward_ensemble if config.ensemble_size > 1 else train_reward_model
    metrics = train(
        base=args.base, train_file=args.train, eval_file=args.eval, out=args.out, config=config
    )
    print(json.dumps({"config": asdict(config), "metrics": metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
