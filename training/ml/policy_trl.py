"""Policy optimisation through TRL 1.16: GRPO and RLOO against our reward model (or ensemble),
and DPO straight on the preference export. Plain Python: imports no Django; the Celery task
and the CLI call the same functions.

    python -m training.ml.policy_trl grpo --policy DIR --reward DIR --prompts FILE.jsonl \\
        --out DIR [--config config.json] [--checkpoints DIR]
    python -m training.ml.policy_trl rloo --policy DIR --reward DIR --prompts FILE.jsonl \\
        --out DIR [--config config.json] [--checkpoints DIR]
    python -m training.ml.policy_trl dpo --policy DIR --train FILE.jsonl [--eval FILE.jsonl] \\
        --out DIR [--config config.json] [--checkpoints DIR]

GRPO and RLOO score completions with :func:`reward_function`, which builds each exchange's
ids as the reward model read them in training (:mod:`training.ml.reward_input`: the sampled
``completion_ids`` when the policy shares the reward model's tokenizer, else the text through
the reward model's own tokenizer and chat template) and scores them with
:class:`training.ml.scoring.RewardScorer` — the same ids and the same numbers as our PPO
(:mod:`training.ml.ppo`), so the three algorithms optimise the same objective.

What TRL 1.16 does that this module relies on (read from its source):

* A completion ends at the first token of ``model.generation_config.eos_token_id`` (a list is
  allowed) or the tokenizer's EOS. The policy's generation config is set to
  :func:`~training.ml.prompts.stop_token_ids` (``<eos>`` and the chat template's end-of-turn
  token), and the saved policy keeps it, so ``generate`` on the artifact stops the same way.
* A callable reward function is called as ``f(prompts=…, completions=…, completion_ids=…,
  trainer_state=…, log_metric=…, …)``; completions are decoded with special tokens skipped
  (strings for string prompts, ``[{"role": "assistant", "content": …}]`` for conversations).
  Its metric name is its ``__name__``.
* Logged per step: ``reward`` (the reward functions' weighted sum: our score with the
  missing-EOS penalty, before any KL term), ``reward_std``, ``kl`` (only when ``beta > 0``;
  GRPO: mean per-token k3 estimate, RLOO: mean per-token log-ratio, which can be negative),
  ``entropy``, ``completions/mean_length``, ``completions/clipped_ratio``, ``loss``. DPO logs
  ``rewards/margins``, ``rewards/accuracies``, ``logps/chosen``, ``logps/rejected``.
* DPO, and GRPO/RLOO with ``beta > 0``, build the reference model from
  ``model.config._name_or_path``: the policy is loaded from its directory so that works. With
  LoRA the reference is the base with the adapter disabled.

Every saved policy loads with ``AutoModelForCausalLM.from_pretrained(out)`` (LoRA adapters are
merged first); the tokenizer and ``preflab_metrics.json`` are saved beside it. With a
checkpoint folder a run saves a resumable state every ``checkpoint_steps`` and a rerun resumes
from it (:func:`training.ml.checkpoints.resume_point`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.ml.checkpoints import resume_point
from training.ml.config import PRECISION_HELP, SEED_CHECK, Check, ConfigError, parse_dataclass
from training.ml.lora import lora_config
from training.ml.monitor import Monitor
from training.ml.preferences import ordered_rows
from training.ml.prompts import Prompt, load_prompts, stop_token_ids
from training.ml.reward import PRECISION_CHECK, use_bf16
from training.ml.scoring import floor_empty_responses
from training.ml.tokenization import load_tokenizer
from training.ml.trainer_save import refuse_sharded_lora, save_trained
from training.ml.vllm_support import TRL_VLLM_MODES, trl_vllm_args, use_vllm, vllm_host

METRICS_FILE = "preflab_metrics.json"
REWARD_FUNCTION_NAME = "reward_model"
DPO_COLUMNS = ("prompt", "chosen", "rejected")


def _opt(default: Any, help_: str) -> Any:
    return field(default=default, metadata={"help": help_})


def _one_of(*choices: str) -> Check:
    return (lambda v: v in choices, "must be one of " + ", ".join(choices))


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class _OnlineConfig:
    """Fields GRPO and RLOO share (sampling, scoring, optimisation)."""

    total_episodes: int = _opt(
        1024, "Completions sampled in the whole run (rounded down to whole batches)."
    )
    batch_size: int = _opt(
        64,
        "Completions per optimiser step (a multiple of num_generations): "
        "batch_size / num_generations prompts per step.",
    )
    num_generations: int = _opt(8, "Completions per prompt (the group; at least 2).")
    num_iterations: int = _opt(1, "Optimisation passes over each sampled batch (μ).")
    max_new_tokens: int = _opt(24, "Longest completion sampled.")
    temperature: float = _opt(0.7, "Sampling temperature (log-probs use the same).")
    top_p: float = _opt(1.0, "Nucleus sampling (1: off).")
    learning_rate: float = _opt(1e-5, "AdamW learning rate.")
    beta: float = _opt(0.04, "KL coefficient against the starting policy (0: no reference).")
    epsilon: float = _opt(0.2, "Clip range of the importance ratio.")
    max_grad_norm: float = _opt(1.0, "Global gradient-norm clip.")
    missing_eos_penalty: float = _opt(
        1.0, "Subtracted from the score of a completion that did not end (no stop token)."
    )
    empty_response_penalty: float = _opt(
        1.0,
        "An empty completion scores the lowest score of its batch minus this: the reward "
        "model never saw one, so its score for it cannot be trusted.",
    )
    ensemble_lambda: float = _opt(1.0, "Ensembles: score = mean − λ·std over the members.")
    reward_max_length: int = _opt(512, "Longest exchange the reward model reads (tokens).")
    lora_rank: int = _opt(0, "Train LoRA adapters of this rank (0: full fine-tuning).")
    gradient_checkpointing: bool = _opt(False, "Trade compute for memory on large models.")
    logging_steps: int = _opt(1, "Log metrics (and a history entry) every N steps.")
    checkpoint_steps: int = _opt(
        50,
        "With a checkpoint folder: save a resumable state (model and optimizer) every N "
        "steps (0: off).",
    )
    seed: int = _opt(0, "Seed of sampling, shuffling and initialisation.")
    precision: str = _opt("auto", PRECISION_HELP + "(Trainer's bf16 autocast.)")
    use_vllm: bool = _opt(
        False,
        "Sample completions with vLLM (TRL's use_vllm): needs the vllm package and a CUDA "
        "device on the host that trains, else the run fails with a config error saying which.",
    )
    vllm_mode: str = _opt(
        "colocate",
        "colocate: vLLM runs in the trainer's process and shares its GPU (the only mode "
        "offered: server mode needs a separate vLLM server).",
    )
    vllm_gpu_memory_utilization: float = _opt(
        0.3, "Share of the GPU's memory vLLM reserves in colocate mode (TRL's default 0.3)."
    )

    @property
    def steps(self) -> int:
        """Optimiser steps: one per sampled batch and iteration."""
        return max(1, self.total_episodes // self.batch_size) * self.num_iterations

    @property
    def prompts_per_step(self) -> int:
        return self.batch_size // self.num_generations


@dataclass(frozen=True)
class GRPOTrainingConfig(_OnlineConfig):
    """GRPO: group-normalised advantages, PPO-style clipped loss, KL in the loss.

    ``beta`` defaults to 0.04 (the GRPO paper's value) rather than TRL's 0.0: against a learned
    reward model an unregularised policy over-optimises it (Gao et al.); set 0 to drop the
    reference model and the KL term."""

    loss_type: str = _opt(
        "dapo",
        "Token-loss aggregation: dapo (tokens in the batch), grpo (per sequence), "
        "dr_grpo (a constant), bnpo (tokens in the local batch).",
    )
    scale_rewards: str = _opt(
        "group", "Divide advantages by the std of the group, the batch, or none."
    )


@dataclass(frozen=True)
class RLOOTrainingConfig(_OnlineConfig):
    """RLOO: leave-one-out baseline over the group, sequence KL subtracted from the reward."""

    beta: float = _opt(0.05, "KL coefficient against the starting policy (0: no reference).")
    normalize_advantages: bool = _opt(False, "Whiten the advantages of each batch.")


@dataclass(frozen=True)
class DPOTrainingConfig:
    """DPO on TRL-format preference rows (prompt / chosen / rejected)."""

    learning_rate: float = _opt(1e-6, "AdamW learning rate.")
    epochs: float = _opt(1.0, "Passes over the training pairs.")
    max_steps: int = _opt(-1, "Stop after this many steps (-1: off).")
    batch_size: int = _opt(16, "Pairs per optimiser step.")
    max_length: int = _opt(512, "Longest prompt + response kept (tokens; longer is truncated).")
    beta: float = _opt(0.1, "Strength of the pull to the reference policy (β; IPO: τ).")
    loss_type: str = _opt("sigmoid", "sigmoid (DPO), ipo, hinge (SLiC) or robust.")
    label_smoothing: float = _opt(
        0.0, "robust: probability that a label is flipped (below 0.5); 0 otherwise."
    )
    max_grad_norm: float = _opt(1.0, "Global gradient-norm clip.")
    lora_rank: int = _opt(0, "Train LoRA adapters of this rank (0: full fine-tuning).")
    gradient_checkpointing: bool = _opt(False, "Trade compute for memory on large models.")
    logging_steps: int = _opt(1, "Log metrics (and a history entry) every N steps.")
    checkpoint_steps: int = _opt(
        50,
        "With a checkpoint folder: save a resumable state (model and optimizer) every N "
        "steps (0: off).",
    )
    seed: int = _opt(0, "Seed of shuffling and initialisation.")
    precision: str = _opt("auto", PRECISION_HELP + "(Trainer's bf16 autocast.)")


ONLINE_CHECKS: dict[str, Check] = {
    "total_episodes": lambda v: 1 <= v <= 10_000_000,
    "batch_size": lambda v: 2 <= v <= 4096,
    "num_generations": lambda v: 2 <= v <= 256,
    "num_iterations": lambda v: 1 <= v <= 64,
    "max_new_tokens": lambda v: 1 <= v <= 8192,
    "temperature": lambda v: 0 < v <= 10,
    "top_p": lambda v: 0 < v <= 1,
    "learning_rate": lambda v: 0 < v < 1,
    "beta": lambda v: 0 <= v <= 100,
    "epsilon": lambda v: 0 < v < 1,
    "max_grad_norm": lambda v: v > 0,
    "missing_eos_penalty": lambda v: 0 <= v <= 100,
    "empty_response_penalty": lambda v: 0 <= v <= 100,
    "ensemble_lambda": lambda v: 0 <= v <= 10,
    "reward_max_length": lambda v: 8 <= v <= 131072,
    "lora_rank": lambda v: 0 <= v <= 1024,
    "logging_steps": lambda v: v >= 1,
    "checkpoint_steps": lambda v: v >= 0,
    "precision": PRECISION_CHECK,
    "seed": SEED_CHECK,
    "vllm_mode": _one_of(*TRL_VLLM_MODES),
    "vllm_gpu_memory_utilization": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
}

GRPO_CHECKS: dict[str, Check] = {
    **ONLINE_CHECKS,
    "loss_type": _one_of("dapo", "grpo", "dr_grpo", "bnpo"),
    "scale_rewards": _one_of("group", "batch", "none"),
}

RLOO_CHECKS: dict[str, Check] = dict(ONLINE_CHECKS)

DPO_CHECKS: dict[str, Check] = {
    "learning_rate": lambda v: 0 < v < 1,
    "epochs": lambda v: 0 < v <= 1000,
    "max_steps": lambda v: v == -1 or v >= 1,
    "batch_size": lambda v: 1 <= v <= 4096,
    "max_length": lambda v: 8 <= v <= 131072,
    "beta": lambda v: 0 < v <= 100,
    "loss_type": _one_of("sigmoid", "ipo", "hinge", "robust"),
    "label_smoothing": lambda v: 0 <= v < 0.5,
    "max_grad_norm": lambda v: v > 0,
    "lora_rank": lambda v: 0 <= v <= 1024,
    "logging_steps": lambda v: v >= 1,
    "checkpoint_steps": lambda v: v >= 0,
    "precision": PRECISION_CHECK,
    "seed": SEED_CHECK,
}


def _check_online(config: _OnlineConfig) -> None:
    errors: dict[str, str] = {}
    if config.batch_size % config.num_generations:
        errors["batch_size"] = "must be a multiple of num_generations"
    elif config.batch_size > config.total_episodes:
        errors["batch_size"] = "must not exceed total_episodes"
    if errors:
        raise ConfigError(errors)


def parse_grpo_config(raw: Mapping[str, Any]) -> GRPOTrainingConfig:
    """Validate a JSON object into a GRPO config; every problem is named by field."""
    config = parse_dataclass(GRPOTrainingConfig, raw, GRPO_CHECKS)
    _check_online(config)
    return config


def parse_rloo_config(raw: Mapping[str, Any]) -> RLOOTrainingConfig:
    """Validate a JSON object into an RLOO config; every problem is named by field."""
    config = parse_dataclass(RLOOTrainingConfig, raw, RLOO_CHECKS)
    _check_online(config)
    return config


def parse_dpo_config(raw: Mapping[str, Any]) -> DPOTrainingConfig:
    """Validate a JSON object into a DPO config; every problem is named by field."""
    config = parse_dataclass(DPOTrainingConfig, raw, DPO_CHECKS)
    if config.label_smoothing and config.loss_type != "robust":
        raise ConfigError({"label_smoothing": "only used with loss_type robust"})
    return config


# --------------------------------------------------------------------------- reward


class RewardFunction:
    """A TRL reward function scoring with our reward artifact, exactly as our PPO does.

    Called by TRL as ``f(prompts=…, completions=…, completion_ids=…, **kwargs)``; returns one
    float per completion: the reward model's score of the exchange, read as in its training
    (:meth:`RewardFunction.scores`; the ensemble's conservative mean − λ·std, or the single
    model's score), minus
    ``missing_eos_penalty`` for a completion whose token ids do not end with a stop token.
    An empty completion scores below the batch (:func:`floor_empty_responses`). Without
    ``completion_ids`` (plain text only) no EOS penalty is applied: decoded text has lost its
    stop token. With TRL's ``log_metric`` it also logs ``score`` (before the penalty) and
    ``finished`` (the fraction of completions that ended) and ``reward_truncated``."""

    __name__ = REWARD_FUNCTION_NAME

    def __init__(
        self,
        reward_dir: Path,
        *,
        tokenizer: Any,
        ensemble_lambda: float,
        missing_eos_penalty: float,
        empty_response_penalty: float = 1.0,
        max_length: int = 512,
    ) -> None:
        from training.ml.scoring import RewardScorer

        self.scorer = RewardScorer(reward_dir, max_length=max_length)
        self.tokenizer = tokenizer
        self.ensemble_lambda = ensemble_lambda
        self.missing_eos_penalty = missing_eos_penalty
        self.empty_response_penalty = empty_response_penalty
        self.stop_ids = set(stop_token_ids(tokenizer))
        self.shared = self.scorer.shares_tokenizer(tokenizer)

    def scores(
        self,
        prompts: list[Prompt],
        completions: list[Any],
        completion_ids: list[list[int]] | None = None,
    ) -> tuple[list[float], int]:
        """Conservative ensemble score (mean − λ·std) or the single model's score of each
        exchange, as the reward model read exchanges in training: the sampled ids when the
        policy shares its tokenizer, else the completion's text (stripped, as PPO) through
        its own tokenizer and chat template. Also how many exchanges were cut to length."""
        content = None
        if completion_ids is not None and self.shared:
            content = [content_before_stop(ids, self.stop_ids) for ids in completion_ids]
        scored = self.scorer.score_exchanges(
            prompts, [completion_text(c) for c in completions], content_ids=content
        )
        return scored.combined(self.ensemble_lambda), scored.truncated

    def __call__(
        self,
        prompts: list[Prompt],
        completions: list[Any],
        completion_ids: list[list[int]] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        raw, truncated = self.scores(prompts, completions, completion_ids)
        raw, _ = floor_empty_responses(
            raw, [completion_text(c) for c in completions], self.empty_response_penalty
        )
        log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
        if log_metric is not None and raw:
            log_metric("score", sum(raw) / len(raw))
            log_metric("reward_truncated", float(truncated))
        if completion_ids is None:
            return raw
        finished = [bool(ids) and ids[-1] in self.stop_ids for ids in completion_ids]
        if log_metric is not None and raw:
            log_metric("finished", sum(finished) / len(finished))
        return [
            value - (0.0 if done else self.missing_eos_penalty)
            for value, done in zip(raw, finished, strict=True)
        ]


def content_before_stop(ids: list[int], stop_ids: set[int]) -> list[int]:
    """A completion's ids before its first stop token (all of them when it has none)."""
    for i, token in enumerate(ids):
        if token in stop_ids:
            return ids[:i]
    return list(ids)


def completion_text(completion: Any) -> str:
    """A TRL completion as text: a string, or the contents of a list of messages."""
    if isinstance(completion, str):
        return completion.strip()
    return "".join(str(m.get("content", "")) for m in completion).strip()


def reward_function(
    reward_dir: Path,
    *,
    tokenizer: Any,
    ensemble_lambda: float,
    missing_eos_penalty: float,
    empty_response_penalty: float = 1.0,
    max_length: int = 512,
) -> RewardFunction:
    """A callable for TRL's ``reward_funcs`` scoring with the artifact at ``reward_dir``
    (one model or an ensemble); see :class:`RewardFunction`."""
    return RewardFunction(
        reward_dir,
        tokenizer=tokenizer,
        ensemble_lambda=ensemble_lambda,
        missing_eos_penalty=missing_eos_penalty,
        empty_response_penalty=empty_response_penalty,
        max_length=max_length,
    )


# --------------------------------------------------------------------------- shared helpers


def _load_policy(policy: Path) -> tuple[Any, Any]:
    """The policy from its directory (so TRL can rebuild the reference from
    ``config._name_or_path``) with its stop tokens in the generation config, and a
    left-padding tokenizer for training."""
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(policy, padding_side="left", truncation_side="left")
    import torch

    # fp32 master weights whatever the checkpoint's dtype (bf16 runs autocast over them)
    model = AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = stop_token_ids(tokenizer)
    return model, tokenizer


def _common_args(config: Any, work: Path, checkpoint_dir: Path | None) -> dict[str, Any]:
    import torch

    saving = checkpoint_dir is not None and config.checkpoint_steps > 0
    return {
        "output_dir": str(checkpoint_dir if saving else work / "checkpoints"),
        "learning_rate": config.learning_rate,
        "max_grad_norm": config.max_grad_norm,
        "seed": config.seed,
        "activation_checkpointing": config.gradient_checkpointing,
        "bf16": use_bf16(config.precision),
        "use_cpu": not torch.cuda.is_available(),
        "report_to": [],
        "logging_steps": config.logging_steps,
        # a resumable state (model, optimizer, scheduler, RNG, trainer state incl. the log
        # history) every checkpoint_steps; the last two are kept
        "save_strategy": "steps" if saving else "no",
        "save_steps": config.checkpoint_steps or 1,
        "save_total_limit": 2,
        "eval_strategy": "no",
        "disable_tqdm": True,
        "disable_dropout": True,
    }


def _save(trainer: Any, policy: Path, out: Path, *, lora: bool) -> None:
    """The trained policy (adapters merged) and the original tokenizer into ``out``."""
    from transformers import AutoTokenizer

    save_trained(trainer, out, lora=lora)
    AutoTokenizer.from_pretrained(policy).save_pretrained(out)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return round(float(value), 6)
    return None


def _train_logs(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-step training entries of a trainer's log history (no summary, no eval)."""
    return [
        entry
        for entry in log_history
        if "loss" in entry and "train_runtime" not in entry and "step" in entry
    ]


ONLINE_HISTORY_KEYS = {
    "reward": "reward",
    "reward_std": "reward_std",
    "score": "score",
    "finished": "finished",
    "kl": "kl",
    "entropy": "entropy",
    "loss": "loss",
    "completion_length": "completions/mean_length",
    "clipped_ratio": "completions/clipped_ratio",
    "learning_rate": "learning_rate",
}

DPO_HISTORY_KEYS = {
    "loss": "loss",
    "reward_margin": "rewards/margins",
    "reward_accuracy": "rewards/accuracies",
    "reward_chosen": "rewards/chosen",
    "reward_rejected": "rewards/rejected",
    "logp_chosen": "logps/chosen",
    "logp_rejected": "logps/rejected",
    "learning_rate": "learning_rate",
}


def _monitor_function(monitor: Monitor) -> Callable[..., list[float]]:
    def monitor_reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
        return monitor.score([completion_text(c) for c in completions])

    monitor_reward.__name__ = monitor.name
    return monitor_reward


def history_from_logs(
    log_history: list[dict[str, Any]], keys: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One dict per logged step: ``step`` and each of ``keys`` (our name → TRL's log key;
    ``None`` where the step did not log it)."""
    return [
        {"step": int(entry["step"])} | {name: _number(entry.get(key)) for name, key in keys.items()}
        for entry in _train_logs(log_history)
    ]


def _series_summary(history: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    values = [h[key] for h in history if h.get(key) is not None]
    if not values:
        return {f"initial_{key}": None, f"final_{key}": None, f"mean_{key}": None}
    return {
        f"initial_{key}": values[0],
        f"final_{key}": values[-1],
        f"mean_{key}": round(sum(values) / len(values), 6),
    }


def _write_metrics(out: Path, metrics: dict[str, Any]) -> None:
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))


# --------------------------------------------------------------------------- GRPO / RLOO


def _prompt_dataset(prompts_file: Path, config: _OnlineConfig) -> Any:
    import datasets

    prompts = load_prompts(prompts_file)
    if len({isinstance(p, str) for p in prompts}) > 1:
        raise ConfigError({"prompts": "mixes plain-text prompts and conversations"})
    if len(prompts) < config.prompts_per_step:
        raise ConfigError(
            {
                "prompts": f"{len(prompts)} prompts; a step needs batch_size / num_generations "
                f"= {config.prompts_per_step}"
            }
        )
    return datasets.Dataset.from_dict({"prompt": prompts})


def _train_online(
    algorithm: str,
    *,
    policy: Path,
    reward: Path,
    prompts_file: Path,
    out: Path,
    config: GRPOTrainingConfig | RLOOTrainingConfig,
    callbacks: list[Any] | None,
    monitors: Sequence[Monitor] = (),
    checkpoint_dir: Path | None = None,
) -> dict[str, Any]:
    import torch

    with_vllm = use_vllm(config.use_vllm, vllm_host())  # before any model is loaded
    torch.manual_seed(config.seed)
    dataset = _prompt_dataset(prompts_file, config)
    model, tokenizer = _load_policy(policy)
    scorer = reward_function(
        reward,
        tokenizer=tokenizer,
        ensemble_lambda=config.ensemble_lambda,
        missing_eos_penalty=config.missing_eos_penalty,
        empty_response_penalty=config.empty_response_penalty,
        max_length=config.reward_max_length,
    )
    work = Path(tempfile.mkdtemp(prefix=f"{algorithm}-"))
    try:
        common = (
            _common_args(config, work, checkpoint_dir)
            | {
                "max_steps": config.steps,
                "per_device_train_batch_size": config.batch_size,
                "num_generations": config.num_generations,
                "num_iterations": config.num_iterations,
                "max_completion_length": config.max_new_tokens,
                "temperature": config.temperature,
                "top_p": config.top_p,
                "top_k": 0,
                "beta": config.beta,
                "epsilon": config.epsilon,
                "mask_truncated_completions": False,  # the missing-EOS penalty handles them
            }
            | trl_vllm_args(
                use=with_vllm,
                mode=config.vllm_mode,
                gpu_memory_utilization=config.vllm_gpu_memory_utilization,
                stop_token_ids=stop_token_ids(tokenizer),
            )
        )
        # TRL types them as returning list[float | None]; monitors weigh 0: logged only
        reward_funcs: list[Any] = [scorer, *(_monitor_function(m) for m in monitors)]
        common["reward_weights"] = [1.0] + [0.0] * len(monitors)
        args_class: Any
        trainer_class: Any
        if isinstance(config, GRPOTrainingConfig):
            from trl import GRPOConfig as args_class
            from trl import GRPOTrainer as trainer_class

            extra: dict[str, Any] = {
                "loss_type": config.loss_type,
                "scale_rewards": config.scale_rewards,
            }
        else:
            from trl import RLOOConfig as args_class
            from trl import RLOOTrainer as trainer_class

            extra = {"normalize_advantages": config.normalize_advantages}
        trainer = trainer_class(
            model=model,
            reward_funcs=reward_funcs,
            args=args_class(**common, **extra),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=callbacks or [],
            peft_config=lora_config(config.lora_rank, "CAUSAL_LM"),
        )
        refuse_sharded_lora(trainer, bool(config.lora_rank))
        resume = resume_point(checkpoint_dir)
        started = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        wall = time.perf_counter() - started
        _save(trainer, policy, out, lora=bool(config.lora_rank))
        keys = ONLINE_HISTORY_KEYS | {m.name: f"rewards/{m.name}/mean" for m in monitors}
        history = history_from_logs(trainer.state.log_history, keys)
        steps = int(result.global_step)
        metrics: dict[str, Any] = {
            "algorithm": algorithm,
            "steps": steps,
            "episodes": steps * config.batch_size // config.num_iterations,
            "precision": "bf16" if common["bf16"] else "fp32",
            "train_loss": _number(result.training_loss),
            "wall_seconds": round(wall, 3),
            "resumed": resume is not None,
            **_series_summary(history, "reward"),
            **_series_summary(history, "kl"),
            "history": history,
        }
        _write_metrics(out, metrics)
        return metrics
    finally:
        shutil.rmtree(work, ignore_errors=True)


def train_grpo(
    *,
    policy: Path,
    reward: Path,
    prompts_file: Path,
    out: Path,
    config: GRPOTrainingConfig,
    callbacks: list[Any] | None = None,
    monitors: Sequence[Monitor] = (),
    checkpoint_dir: Path | None = None,
) -> dict[str, Any]:
    """GRPO on the prompts of ``prompts_file`` against the reward artifact ``reward``; saves
    the policy to ``out`` and returns its metrics (with a per-step ``history``). With
    ``checkpoint_dir``, a resumable state is saved there every ``checkpoint_steps`` and a
    run that finds one resumes from it."""
    return _train_online("grpo", **locals())


def train_rloo(
    *,
    policy: Path,
    reward: Path,
    prompts_file: Path,
    out: Path,
    config: RLOOTrainingConfig,
    callbacks: list[Any] | None = None,
    monitors: Sequence[Monitor] = (),
    checkpoint_dir: Path | None = None,
) -> dict[str, Any]:
    """RLOO on the prompts of ``prompts_file`` against the reward artifact ``reward``; saves
    the policy to ``out`` and returns its metrics (with a per-step ``history``). With
    ``checkpoint_dir``, it saves and resumes as :func:`train_grpo` does."""
    return _train_online("rloo", **locals())


# --------------------------------------------------------------------------- DPO


def _preference_dataset(data: Any, name: str) -> Any:
    """Only prompt / chosen / rejected: the export's extra columns (margin, strength,
    agreement, comparison_id, …) are dropped."""
    missing = [c for c in DPO_COLUMNS if c not in data.column_names]
    if missing:
        raise ConfigError({name: "missing column(s) " + ", ".join(missing)})
    return data.select_columns(list(DPO_COLUMNS))


def train_dpo(
    *,
    policy: Path,
    train_file: Path,
    eval_file: Path | None,
    out: Path,
    config: DPOTrainingConfig,
    callbacks: list[Any] | None = None,
    checkpoint_dir: Path | None = None,
) -> dict[str, Any]:
    """DPO on TRL-format preference JSONL; saves the policy to ``out`` and returns its metrics
    (with a per-step ``history``; with ``eval_file``, held-out implicit-reward accuracy and
    margin under ``eval``). With ``checkpoint_dir``, it saves and resumes as
    :func:`train_grpo` does."""
    import datasets
    import torch
    from trl import DPOConfig, DPOTrainer

    torch.manual_seed(config.seed)
    work = Path(tempfile.mkdtemp(prefix="dpo-"))
    try:
        files = {"train": str(train_file)} | ({"eval": str(eval_file)} if eval_file else {})
        data = datasets.load_dataset("json", data_files=files, cache_dir=str(work / "cache"))
        ordered, dropped = ordered_rows(data["train"])
        if len(ordered) == 0:
            raise ConfigError({"train": "no row states a preference (only ties / both bad)"})
        train = _preference_dataset(ordered, "train")
        held_out = _preference_dataset(ordered_rows(data["eval"])[0], "eval") if eval_file else None
        model, tokenizer = _load_policy(policy)
        tokenizer.padding_side = "right"
        args = DPOConfig(
            **_common_args(config, work, checkpoint_dir),
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size,
            max_length=config.max_length,
            beta=config.beta,
            loss_type=[config.loss_type],
            label_smoothing=config.label_smoothing,
        )
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=train,
            eval_dataset=held_out,
            processing_class=tokenizer,
            callbacks=callbacks or [],
            peft_config=lora_config(config.lora_rank, "CAUSAL_LM"),
        )
        refuse_sharded_lora(trainer, bool(config.lora_rank))
        resume = resume_point(checkpoint_dir)
        started = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        wall = time.perf_counter() - started
        history = history_from_logs(trainer.state.log_history, DPO_HISTORY_KEYS)
        metrics: dict[str, Any] = {
            "algorithm": "dpo",
            "steps": int(result.global_step),
            "pairs": len(train),
            "dropped_rows": dropped,
            "precision": "bf16" if args.bf16 else "fp32",
            "train_loss": _number(result.training_loss),
            "wall_seconds": round(wall, 3),
            "resumed": resume is not None,
            **_series_summary(history, "reward_margin"),
            **_series_summary(history, "reward_accuracy"),
            "history": history,
        }
        if held_out is not None:
            evaluation = trainer.evaluate()
            metrics["eval"] = {
                "n": len(held_out),
                "loss": _number(evaluation.get("eval_loss")),
                "reward_accuracy": _number(evaluation.get("eval_rewards/accuracies")),
                "reward_margin": _number(evaluation.get("eval_rewards/margins")),
            }
        _save(trainer, policy, out, lora=bool(config.lora_rank))
        _write_metrics(out, metrics)
        return metrics
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- CLI


CHECKPOINTS_HELP = "Folder for resumable checkpoints; a rerun with the same folder resumes."


def main(argv: list[str] | None = None) -> int:
    """``grpo``/``rloo``/``dpo`` subcommands; prints the config and metrics as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    commands = parser.add_subparsers(dest="algorithm", required=True)
    online: dict[str, argparse.ArgumentParser] = {}
    for name in ("grpo", "rloo"):
        sub = commands.add_parser(name, help=f"{name.upper()} against a reward model.")
        sub.add_argument("--policy", type=Path, required=True, help="Policy directory.")
        sub.add_argument("--reward", type=Path, required=True, help="Reward model or ensemble.")
        sub.add_argument("--prompts", type=Path, required=True, help="Prompt JSONL.")
        sub.add_argument("--out", type=Path, required=True, help="Where the policy is saved.")
        sub.add_argument("--config", type=Path, help=f"JSON file of {name.upper()} fields.")
        sub.add_argument("--checkpoints", type=Path, help=CHECKPOINTS_HELP)
        online[name] = sub
    dpo = commands.add_parser("dpo", help="DPO on TRL-format preference JSONL.")
    dpo.add_argument("--policy", type=Path, required=True, help="Policy directory.")
    dpo.add_argument("--train", type=Path, required=True, help="TRL-format JSONL.")
    dpo.add_argument("--eval", type=Path, help="Held-out JSONL.")
    dpo.add_argument("--out", type=Path, required=True, help="Where the policy is saved.")
    dpo.add_argument("--config", type=Path, help="JSON file of DPO fields.")
    dpo.add_argument("--checkpoints", type=Path, help=CHECKPOINTS_HELP)
    args = parser.parse_args(argv)
    sub = dpo if args.algorithm == "dpo" else online[args.algorithm]
    try:
        raw = json.loads(args.config.read_text()) if args.config else {}
    except (OSError, json.JSONDecodeError) as exc:
        sub.error(f"bad config: {exc}")
    parse = {"grpo": parse_grpo_config, "rloo": parse_rloo_config, "dpo": parse_dpo_config}
    try:
        config: Any = parse[args.algorithm](raw)
    except ConfigError as exc:
        sub.error(f"bad config: {exc}")
    try:  # the trainer's per-step log lines go to stderr: stdout is the JSON result alone
        with contextlib.redirect_stdout(sys.stderr):
            metrics = _run(args, config)
    except ConfigError as exc:
        sub.error(f"bad input: {exc}")
    print(json.dumps({"config": asdict(config), "metrics": metrics}, indent=2))
    return 0


def _run(args: argparse.Namespace, config: Any) -> dict[str, Any]:
    if args.algorithm == "dpo":
        return train_dpo(
            policy=args.policy,
            train_file=args.train,
            eval_file=args.eval,
            out=args.out,
            config=config,
            checkpoint_dir=args.checkpoints,
        )
    train = train_grpo if args.algorithm == "grpo" else train_rloo
    return train(
        policy=args.policy,
        reward=args.reward,
        prompts_file=args.prompts,
        out=args.out,
        config=config,
        checkpoint_dir=args.checkpoints,
    )


if __name__ == "__main__":
    raise SystemExit(main())
