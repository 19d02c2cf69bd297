"""PPO for language models against a reward model (or ensemble), with a frozen reference,
a value model initialized from the reward model, per-token KL shaping with an adaptive or
fixed coefficient, GAE and clipped losses. Plain Python: imports no Django; the Celery task
calls the same :func:`train_ppo`.

    python -m training.ml.ppo --policy DIR --reward DIR --prompts FILE.jsonl --out DIR \\
        [--config config.json] [--checkpoints DIR]

Data-parallel over N processes (one per GPU, or CPU processes with gloo) under a launcher:

    accelerate launch --multi_gpu --num_processes N -m training.ml.ppo ...   (or torchrun)

(see :func:`train_ppo` and :mod:`training.ml.distributed`; ``accelerate launch --cpu`` starts
one process only). The saved policy loads with ``AutoModelForCausalLM.from_pretrained(out)``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from training.ml import distributed
from training.ml.config import (
    PRECISION_HELP,
    SEED_CHECK,
    Check,
    ConfigError,
    parse_dataclass,
    resolve_precision,
)
from training.ml.lora import lora_config
from training.ml.memory_plan import (
    CUDA_OVERHEAD,
    MemoryPlan,
    ModelShape,
    PlanInputs,
    available_memory,
    check_fits,
    estimate,
)
from training.ml.monitor import Monitor
from training.ml.ppo_math import (
    AdaptiveKLController,
    FixedKLController,
    RunningMoments,
    explained_variance,
    gae,
    kl_per_token,
    masked_mean,
    masked_whiten,
    policy_loss,
    shaped_rewards,
    value_loss,
)
from training.ml.prompts import (
    Prompt,
    encode_prompts,
    load_prompts,
    prompt_ids,
    stop_token_ids,
)
from training.ml.scoring import floor_empty_responses
from training.ml.tokenization import load_tokenizer

logger = logging.getLogger(__name__)


def _opt(default: Any, help_: str) -> Any:
    return field(default=default, metadata={"help": help_})


@dataclass(frozen=True)
class PPOConfig:
    total_episodes: int = _opt(1024, "Rollouts (prompt → response) in the whole run.")
    batch_size: int = _opt(64, "Episodes per PPO step (one rollout batch).")
    mini_batch_size: int = _opt(16, "Episodes per gradient step.")
    ppo_epochs: int = _opt(4, "Passes over each rollout batch.")
    max_new_tokens: int = _opt(24, "Longest response sampled.")
    temperature: float = _opt(0.7, "Sampling temperature (log-probs use the same).")
    top_p: float = _opt(1.0, "Nucleus sampling (1: off).")
    missing_eos_penalty: float = _opt(1.0, "Subtracted from the score of a response with no EOS.")
    empty_response_penalty: float = _opt(
        1.0,
        "An empty response (a stop token first) scores the batch's lowest score minus this: "
        "the reward model never saw one, so its score for it cannot be trusted.",
    )
    learning_rate: float = _opt(1e-4, "Policy AdamW learning rate.")
    value_learning_rate: float = _opt(3e-4, "Value model AdamW learning rate.")
    value_warmup_steps: int = _opt(
        1,
        "Rollouts that train only the value model first (its head, copied from the reward "
        "model, learns the normalized returns before the policy follows its advantages).",
    )
    kl_estimator: str = _opt("k1", "Per-token KL estimator: k1 (log p − log q) or k3.")
    kl_coef: float = _opt(0.05, "KL penalty β (the initial one when adaptive).")
    adaptive_kl: bool = _opt(True, "Adapt β towards target_kl (Ziegler et al.).")
    auto_kl_coef: bool = _opt(
        True,
        "Adaptive only: start β at σ/√(2·target_kl), σ the first rollout's spread of (normalized) "
        "scores — the β at which the KL-regularized optimum of a Gaussian reward sits at the "
        "target — instead of kl_coef, whose right value depends on the reward's scale.",
    )
    target_kl: float = _opt(3.0, "Target KL per response, in nats (adaptive only).")
    kl_horizon: int = _opt(
        0,
        "Episodes over which β closes the gap to the target (0: an eighth of total_episodes, "
        "at least one batch, so β can move about 5× over any run and ±(0.2 · batch_size / "
        "horizon) a step: the controller reacts within a few steps whatever the run length).",
    )
    kl_hard_stop: float = _opt(50.0, "Stop the run when the mean KL exceeds this (nats).")
    normalize_reward: bool = _opt(True, "Standardize scores (see reward_norm_rollouts).")
    reward_norm_rollouts: int = _opt(
        1,
        "Rollouts whose scores fix the normalization's mean and std; later scores use those "
        "fixed statistics, and a value model copied from the reward model has its output "
        "rescaled to them once (0: running statistics over the whole run).",
    )
    reward_clip: float = _opt(5.0, "Clip normalized scores to ±this (0: off).")
    ensemble_lambda: float = _opt(1.0, "Ensembles: score = mean − λ·std over members.")
    reward_max_length: int = _opt(
        512,
        "Longest exchange the reward model reads (tokens); longer ones lose prompt tokens "
        "from the left (never the response's end) and are counted as reward_truncated.",
    )
    gamma: float = _opt(1.0, "Discount.")
    lam: float = _opt(0.95, "GAE λ.")
    whiten_advantages: bool = _opt(True, "Zero-mean, unit-variance advantages per batch.")
    cliprange: float = _opt(0.2, "Policy ratio clip ε.")
    cliprange_value: float = _opt(0.2, "Value clip ε.")
    vf_coef: float = _opt(0.1, "Weight of the value loss.")
    max_grad_norm: float = _opt(1.0, "Global gradient-norm clip per model.")
    max_approx_kl: float = _opt(
        0.1,
        "Stop the remaining PPO epochs on a rollout once a minibatch's approx KL exceeds "
        "this (0: off).",
    )
    lora_rank: int = _opt(
        0,
        "Train LoRA adapters of this rank on the policy (0: full). The reference is then the "
        "policy with its adapters disabled (no second copy of the weights).",
    )
    critic_lora_rank: int = _opt(
        0,
        "Train the value model as LoRA adapters of this rank on a frozen backbone, its "
        "scalar head fully (0: the whole value model is trained).",
    )
    seed: int = _opt(0, "Seed of sampling, shuffling and initialization.")
    precision: str = _opt(
        "auto",
        PRECISION_HELP + "'bf16-pure': bf16 weights, gradients and Adam state, no fp32 "
        "copies (least memory, least exact). bf16 modes need CUDA. Frozen models (reference, "
        "reward) are held in bf16 under either bf16 mode.",
    )
    rollout_forward_batch_size: int = _opt(
        0,
        "The policy, reference, value and reward forward passes over a rollout batch run in "
        "chunks of this many episodes (0: the whole batch at once; the reward model then "
        "scores 32 at a time). Sampling itself runs over the whole batch.",
    )
    logprob_chunk_size: int = _opt(
        4,
        "Rows whose logits are turned into fp32 log-probs at once (logit of the chosen token "
        "minus logsumexp, recomputed chunk by chunk in the backward pass): no [B, R, V] fp32 "
        "log-softmax is ever held.",
    )
    gradient_checkpointing: bool = _opt(
        False,
        "Recompute each transformer layer's activations in the backward pass (policy and "
        "value model): activation memory of one layer instead of all, ~30% more compute.",
    )
    gradient_accumulation_steps: int = _opt(
        1,
        "Split each minibatch into this many micro-batches, each backward-passed on its own "
        "(losses weighted by their share of the minibatch's tokens); the optimizers step "
        "once per minibatch. Must divide mini_batch_size.",
    )
    memory_limit_gib: float = _opt(
        0.0,
        "Refuse a run whose memory estimate exceeds this many GiB (0: the CUDA device's "
        "total memory, or the available RAM on CPU).",
    )
    checkpoint_steps: int = _opt(
        10, "With a checkpoint folder: save a resumable state every N steps (0: off)."
    )

    @property
    def steps(self) -> int:
        return max(1, self.total_episodes // self.batch_size)


PPO_PRECISIONS = ("auto", "fp32", "bf16", "bf16-pure")

PPO_CHECKS: dict[str, Check] = {
    "total_episodes": lambda v: 1 <= v <= 10_000_000,
    "batch_size": lambda v: 1 <= v <= 4096,
    "mini_batch_size": lambda v: 1 <= v <= 4096,
    "ppo_epochs": lambda v: 1 <= v <= 64,
    "max_new_tokens": lambda v: 1 <= v <= 8192,
    "temperature": lambda v: 0 < v <= 10,
    "top_p": lambda v: 0 < v <= 1,
    "missing_eos_penalty": lambda v: 0 <= v <= 100,
    "empty_response_penalty": lambda v: 0 <= v <= 100,
    "learning_rate": lambda v: 0 < v < 1,
    "value_learning_rate": lambda v: 0 < v < 1,
    "value_warmup_steps": lambda v: 0 <= v <= 10_000,
    "kl_estimator": (lambda v: v in ("k1", "k3"), "must be k1 or k3"),
    "kl_coef": lambda v: 0 <= v <= 100,
    "target_kl": lambda v: 0 < v <= 1000,
    "kl_horizon": lambda v: v >= 0,
    "reward_norm_rollouts": lambda v: 0 <= v <= 10_000,
    "kl_hard_stop": lambda v: v > 0,
    "reward_clip": lambda v: v >= 0,
    "ensemble_lambda": lambda v: 0 <= v <= 10,
    "reward_max_length": lambda v: 8 <= v <= 131072,
    "gamma": lambda v: 0 <= v <= 1,
    "lam": lambda v: 0 <= v <= 1,
    "cliprange": lambda v: 0 < v < 1,
    "cliprange_value": lambda v: v > 0,
    "vf_coef": lambda v: 0 <= v <= 100,
    "max_grad_norm": lambda v: v > 0,
    "max_approx_kl": lambda v: v >= 0,
    "lora_rank": lambda v: 0 <= v <= 1024,
    "critic_lora_rank": lambda v: 0 <= v <= 1024,
    "precision": (lambda v: v in PPO_PRECISIONS, "must be auto, fp32, bf16 or bf16-pure"),
    "rollout_forward_batch_size": lambda v: 0 <= v <= 4096,
    "logprob_chunk_size": lambda v: 1 <= v <= 4096,
    "gradient_accumulation_steps": lambda v: 1 <= v <= 4096,
    "memory_limit_gib": lambda v: 0 <= v <= 1_000_000,
    "checkpoint_steps": lambda v: v >= 0,
    "seed": SEED_CHECK,
}


def parse_ppo_config(raw: dict[str, Any]) -> PPOConfig:
    """Validate a JSON object into a PPO config; every problem is named by field."""
    config = parse_dataclass(PPOConfig, raw, PPO_CHECKS)
    if config.mini_batch_size > config.batch_size:
        raise ConfigError({"mini_batch_size": "must not exceed batch_size"})
    if config.mini_batch_size % config.gradient_accumulation_steps:
        raise ConfigError(
            {"gradient_accumulation_steps": "must divide mini_batch_size (equal micro-batches)"}
        )
    if config.batch_size > config.total_episodes:
        raise ConfigError({"batch_size": "must not exceed total_episodes"})
    return config


class KLExplosion(RuntimeError):
    """The policy drifted past ``kl_hard_stop``: the run stops rather than save it."""


StepCallback = Callable[[int, int, dict[str, float]], bool]
"""Called after each step with (step, total steps, metrics); True asks the run to stop."""


def disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    config = getattr(model, "config", None)
    for name in ("attention_dropout", "hidden_dropout", "dropout", "resid_pdrop", "attn_pdrop"):
        if config is not None and isinstance(getattr(config, name, None), float):
            setattr(config, name, 0.0)


class TrainedParameters:
    """AdamW over a model's trainable parameters with global gradient-norm clipping.

    With ``master_weights`` (the mixed ``bf16`` precision) the model's parameters are bf16
    and the optimizer updates fp32 copies of them (Adam's moments fp32 too), writing the
    rounded result back after each step: small updates accumulate in fp32 instead of being
    lost to bf16 rounding (a parameter that is fp32 already, such as a LoRA adapter peft keeps
    in fp32 over a bf16 base, is its own master). Otherwise the optimizer works on the
    parameters themselves (fp32, or bf16 state for ``bf16-pure``)."""

    def __init__(
        self, parameters: Sequence[torch.nn.Parameter], lr: float, *, master_weights: bool
    ) -> None:
        self.parameters = list(parameters)
        self.masters: list[torch.Tensor] | None = None
        if master_weights:
            self.masters = [
                p if p.dtype == torch.float32 else p.detach().float().requires_grad_(True)
                for p in self.parameters
            ]
        self.optimizer = torch.optim.AdamW(self.masters or self.parameters, lr=lr)
        self.synchronize = False  # data-parallel: average the gradients over the ranks

    def step(self, max_grad_norm: float) -> float:
        """Clip the gradients to ``max_grad_norm`` (global norm, in fp32), step, clear the
        gradients; returns the norm before clipping. With ``synchronize`` the gradients are
        first averaged over the ranks (in fp32), so every rank clips and steps alike."""
        if self.masters is not None:
            for param, master in zip(self.parameters, self.masters, strict=True):
                if master is not param:
                    master.grad = None if param.grad is None else param.grad.float()
                    param.grad = None  # the bf16 gradient is freed as its fp32 copy is made
            if self.synchronize:
                distributed.all_reduce_gradients(self.masters)
            norm = torch.nn.utils.clip_grad_norm_(self.masters, max_grad_norm)
            self.optimizer.step()
            with torch.no_grad():
                for param, master in zip(self.parameters, self.masters, strict=True):
                    if master is not param:
                        param.copy_(master)
        else:
            if self.synchronize:
                distributed.all_reduce_gradients(self.parameters)
            norm = torch.nn.utils.clip_grad_norm_(self.parameters, max_grad_norm)
            self.optimizer.step()
        self.zero_grad()
        return float(norm)

    def zero_grad(self) -> None:
        for param in self.parameters:
            param.grad = None
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"optimizer": self.optimizer.state_dict()}
        if self.masters is not None:
            state["masters"] = [m.detach() for m in self.masters]  # fp32 ones: the params
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "optimizer" not in state:  # a checkpoint saved as the bare AdamW state
            state = {"optimizer": state}
        self.optimizer.load_state_dict(state["optimizer"])
        if self.masters is not None and "masters" in state:
            with torch.no_grad():
                for param, master, saved in zip(
                    self.parameters, self.masters, state["masters"], strict=True
                ):
                    master.copy_(saved)
                    param.copy_(saved)


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def enable_gradient_checkpointing(model: Any) -> None:
    """Non-reentrant checkpointing of every layer of a transformers model (or of the model
    under a peft wrapper): LoRA's frozen inputs need no ``requires_grad`` trick then."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


NO_GRAD_SYNC_ENV = "PREFLAB_PPO_DEBUG_NO_GRAD_SYNC"
"""Debugging only: set to 1, data-parallel ranks skip the gradient all-reduce (and drift
apart: the tests show that the checksums then differ)."""
CHECKSUMS_ENV = "PREFLAB_PPO_DEBUG_CHECKSUMS"
"""Debugging only: a folder where every rank writes ``rank-N.json`` at the end of a run:
checksums of its policy and value model, its β and reward-normalization statistics."""


def local_batch_sizes(config: PPOConfig, processes: int) -> tuple[int, int]:
    """Each process's share of a step's rollout batch and of each minibatch. ``batch_size``
    and ``mini_batch_size`` are the whole step's, whatever the number of processes: the same
    config trains the same number of episodes per step and per gradient step."""
    problems = {}
    if config.batch_size % processes:
        problems["batch_size"] = f"must be a multiple of the {processes} processes"
    if config.mini_batch_size % (processes * config.gradient_accumulation_steps):
        problems["mini_batch_size"] = (
            f"must be a multiple of the {processes} processes × gradient_accumulation_steps"
        )
    if problems:
        raise ConfigError(problems)
    return config.batch_size // processes, config.mini_batch_size // processes


def sampling_seed(seed: int, rank: int) -> int:
    """The torch seed of rank ``rank``'s sampling and shuffling (rank 0 keeps ``seed``'s
    stream, as a single process does)."""
    return seed + 1_000_003 * rank


def state_digest(module: torch.nn.Module) -> str:
    """sha256 over a module's state dict (names, dtypes and bytes, in order)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def global_masked_mean_var(values: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Mean and unbiased variance over the masked entries of every rank's ``values``."""
    total, count = distributed.all_reduce_sum([(values * mask).sum().item(), mask.sum().item()])
    mean = total / max(count, 1.0)
    (squares,) = distributed.all_reduce_sum([(((values - mean) * mask) ** 2).sum().item()])
    return mean, squares / max(count - 1.0, 1.0)


def kl_horizon(config: PPOConfig) -> int:
    """The adaptive controller's horizon in episodes: ``kl_horizon``, or (0) an eighth of the
    run and at least one batch."""
    return config.kl_horizon or max(config.batch_size, config.total_episodes // 8)


class ValueModel(torch.nn.Module):
    """A transformer backbone with a scalar head applied at every position."""

    def __init__(self, backbone: torch.nn.Module, head: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        # output = head · out_scale + out_shift (see standardize_outputs)
        self.out_scale: torch.Tensor
        self.out_shift: torch.Tensor
        self.register_buffer("out_scale", torch.tensor(1.0))
        self.register_buffer("out_shift", torch.tensor(0.0))

    def standardize_outputs(self, mean: float, std: float) -> None:
        """From now on output (v − mean) / std, where v is what the head gives: a head
        copied from the reward model then speaks in the units of normalized scores."""
        with torch.no_grad():
            self.out_shift.copy_((self.out_shift - mean) / std)
            self.out_scale.copy_(self.out_scale / std)

    @classmethod
    def from_reward_model(cls, reward_model: Any) -> ValueModel:
        """Backbone and score head copied from a sequence-classification reward model."""
        backbone = getattr(reward_model, reward_model.base_model_prefix)
        return cls(copy.deepcopy(backbone), copy.deepcopy(reward_model.score))

    @classmethod
    def from_causal_lm(cls, policy: Any) -> ValueModel:
        """Backbone of the policy and a zero-initialized head (reward tokenizer differs). The
        plain transformers model, never a peft wrapper: LoRA goes on afterwards."""
        if hasattr(policy, "get_base_model"):
            raise TypeError("build the value model from the base model, before peft wraps it")
        backbone = getattr(policy, policy.base_model_prefix)
        head = torch.nn.Linear(policy.config.hidden_size, 1, bias=False)
        torch.nn.init.zeros_(head.weight)
        return cls(copy.deepcopy(backbone), head.to(backbone.dtype))

    def add_lora(self, rank: int) -> None:
        """Freeze the backbone under LoRA adapters of ``rank`` on every linear layer; the
        head stays fully trained."""
        from peft import LoraConfig, get_peft_model

        self.backbone = get_peft_model(
            self.backbone,
            LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear"),
        )

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).last_hidden_state
        scale, shift = self.out_scale.float(), self.out_shift.float()
        return self.head(hidden).squeeze(-1).float() * scale + shift


@dataclass
class Rollout:
    """One batch of episodes with everything the PPO epochs need (no gradients)."""

    input_ids: torch.Tensor  # [B, Q + R] query (left-padded) then response (right-padded)
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    query_length: int
    mask: torch.Tensor  # [B, R] response tokens, stop token included
    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor  # raw (after the missing-EOS penalty)
    finished: torch.Tensor
    texts: list[str]
    entropy: float
    empty: int = 0  # responses that were only a stop token (scored below the batch)
    truncated: int = 0  # exchanges longer than the reward model's max length (prompt cut)


def position_ids_of(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def _chunk_logprobs(
    logits: torch.Tensor, tokens: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    scaled = logits.float() / temperature
    normalizer = torch.logsumexp(scaled, dim=-1)
    chosen = scaled.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return chosen - normalizer, normalizer


def token_logprobs(
    logits: torch.Tensor,
    tokens: torch.Tensor,
    temperature: float,
    *,
    chunk_size: int = 4,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs of ``tokens`` [B, R] under ``logits`` [B, R, V] / temperature, in fp32,
    ``chunk_size`` rows at a time: the chosen token's logit minus the logsumexp, never a full
    fp32 log-softmax. Under autograd each chunk is checkpointed: the backward pass recomputes
    one chunk's fp32 logits at a time instead of keeping them all. With ``with_entropy`` also
    each position's entropy (no gradient)."""
    logprobs: list[torch.Tensor] = []
    entropies: list[torch.Tensor] = []
    grad = torch.is_grad_enabled() and logits.requires_grad
    for start in range(0, logits.shape[0], chunk_size):
        part, chosen = logits[start : start + chunk_size], tokens[start : start + chunk_size]
        if grad:
            from torch.utils.checkpoint import checkpoint

            lp, normalizer = checkpoint(
                _chunk_logprobs, part, chosen, temperature, use_reentrant=False
            )
        else:
            lp, normalizer = _chunk_logprobs(part, chosen, temperature)
        logprobs.append(lp)
        if with_entropy:
            with torch.no_grad():
                scaled = part.float() / temperature
                probs = torch.softmax(scaled, dim=-1)
                entropies.append(normalizer.detach() - (probs * scaled).sum(dim=-1))
    entropy = torch.cat(entropies) if with_entropy else None
    return torch.cat(logprobs), entropy


def _keeps_logits(model: Any) -> bool:
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def response_logprobs(
    model: Any,
    batch: Rollout | dict[str, Any],
    query_length: int,
    temperature: float,
    *,
    chunk_size: int = 4,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs of the response tokens under ``model`` (and, with ``with_entropy``, the
    entropy of each response position). Only the response positions' logits are computed
    (``logits_to_keep``) where the model supports it."""
    get = batch.__getitem__ if isinstance(batch, dict) else batch.__getattribute__
    input_ids = get("input_ids")
    response_length = input_ids.shape[1] - query_length
    extra = {"logits_to_keep": response_length + 1} if _keeps_logits(model) else {}
    logits = model(
        input_ids=input_ids,
        attention_mask=get("attention_mask"),
        position_ids=get("position_ids"),
        **extra,
    ).logits[:, -(response_length + 1) : -1]
    tokens = input_ids[:, query_length:]
    return token_logprobs(
        logits, tokens, temperature, chunk_size=chunk_size, with_entropy=with_entropy
    )


@dataclass
class SampledResponses:
    """Sampled continuations cut after their first stop token, ready for forward passes."""

    batch: dict[str, torch.Tensor]  # query (left-padded) + response (padded after the stop)
    query_length: int
    mask: torch.Tensor  # [B, R] response tokens, stop token included
    finished: torch.Tensor  # [B] a stop token was produced
    texts: list[str]  # decoded responses, the stop token dropped
    content_ids: list[list[int]]  # each response's ids before its stop token


def split_responses(
    tokenizer: Any, queries: Any, output: torch.Tensor, stop_ids: list[int]
) -> SampledResponses:
    """Cut each generated row after its first stop token (the whole row when none)."""
    query_length = queries["input_ids"].shape[1]
    responses = output[:, query_length:]
    is_stop = torch.isin(responses, torch.tensor(stop_ids, device=responses.device))
    finished = is_stop.any(dim=1)
    first_stop = torch.where(finished, is_stop.int().argmax(dim=1), responses.shape[1] - 1)
    positions = torch.arange(responses.shape[1], device=responses.device)
    mask = (positions.unsqueeze(0) <= first_stop.unsqueeze(1)).float()
    responses = torch.where(mask.bool(), responses, tokenizer.pad_token_id)
    attention_mask = torch.cat([queries["attention_mask"], mask.long()], dim=1)
    kept = (mask.sum(dim=1) - finished.float()).long().tolist()  # the stop token dropped
    content_ids = [row[:n].tolist() for row, n in zip(responses, kept, strict=True)]
    return SampledResponses(
        batch={
            "input_ids": torch.cat([queries["input_ids"], responses], dim=1),
            "attention_mask": attention_mask,
            "position_ids": position_ids_of(attention_mask),
        },
        query_length=query_length,
        mask=mask,
        finished=finished,
        texts=[tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in content_ids],
        content_ids=content_ids,
    )


class PPOTrainer:
    """Holds the four roles and runs rollouts and PPO updates."""

    def __init__(
        self,
        *,
        policy_dir: Path,
        reward_dir: Path,
        prompts: list[Prompt],
        config: PPOConfig,
        device: str | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM

        from training.ml.scoring import RewardScorer

        self.config = config
        self.device = device or distributed.default_device()
        # under a multi-process launcher: join the others (one process: nothing happens)
        self.world = distributed.init(self.device)
        self.batch_size, self.mini_batch_size = local_batch_sizes(config, self.world.size)
        self.precision = resolve_precision(config.precision, modes=PPO_PRECISIONS)
        self.bf16 = self.precision != "fp32"
        dtype = torch.bfloat16 if self.bf16 else torch.float32
        random.seed(config.seed)
        torch.manual_seed(config.seed)
        self.rng = random.Random(config.seed)  # noqa: S311 - prompt order
        self.prompts = prompts
        self.tokenizer: Any = load_tokenizer(policy_dir, padding_side="left")
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.memory_plan = self._plan_memory(policy_dir, reward_dir)
        # the dtype is explicit: transformers would otherwise load a checkpoint's own dtype
        policy: Any = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=dtype)
        disable_dropout(policy)
        self.scorer = RewardScorer(
            reward_dir, device=self.device, max_length=config.reward_max_length
        )
        for model in self.scorer.models:
            model.to(dtype)
        reward_model = self.scorer.models[0]
        same_vocab = self.scorer.tokenizer.get_vocab() == self.tokenizer.get_vocab()
        self.value_from_reward = same_vocab
        # the reward model reads the sampled ids themselves when they mean the same to it
        self.score_ids = self.scorer.shares_tokenizer(self.tokenizer)
        # the value model reads the policy's tokens: initialized from the reward model when
        # that reads them too, else from the policy's own (base, never peft-wrapped) backbone
        value = (
            ValueModel.from_reward_model(reward_model)
            if same_vocab
            else ValueModel.from_causal_lm(policy)
        )
        disable_dropout(value)
        if config.critic_lora_rank:
            value.add_lora(config.critic_lora_rank)
        if config.lora_rank:
            from peft import get_peft_model

            policy = get_peft_model(
                policy, lora_config(config.lora_rank, "CAUSAL_LM", all_linear=True)
            )
            self.reference: Any = None  # the adapters disabled
        else:
            self.reference = copy.deepcopy(policy).eval().requires_grad_(False)
        if config.gradient_checkpointing:
            enable_gradient_checkpointing(policy)
            enable_gradient_checkpointing(value.backbone)
        self.policy: Any = policy.to(self.device)
        if self.reference is not None:
            self.reference.to(self.device)
        # the value model keeps the run's precision (no silent fp32 upcast); its outputs are
        # turned to fp32 for the losses
        self.value = value.to(device=self.device, dtype=dtype)
        if self.world.distributed:
            # every rank starts from rank 0's weights, as DDP does (and before any fp32
            # master copy is taken)
            distributed.broadcast_tensors(
                [*trainable(self.policy), *trainable(self.value), *self.value.buffers()]
            )
        master = self.precision == "bf16"
        self.policy_optimizer = TrainedParameters(
            trainable(self.policy), config.learning_rate, master_weights=master
        )
        self.value_optimizer = TrainedParameters(
            trainable(self.value), config.value_learning_rate, master_weights=master
        )
        self.kl_controller: AdaptiveKLController | FixedKLController = (
            AdaptiveKLController(config.kl_coef, config.target_kl, kl_horizon(config))
            if config.adaptive_kl
            else FixedKLController(config.kl_coef)
        )
        self.moments = RunningMoments()
        self.step = 0
        self.last_texts: list[str] = []
        self.timings = {"generation": 0.0, "scoring": 0.0, "training": 0.0}
        if self.world.distributed:
            synchronize = os.environ.get(NO_GRAD_SYNC_ENV, "") != "1"
            if not synchronize:
                logger.warning("%s=1: the ranks' gradients are NOT averaged", NO_GRAD_SYNC_ENV)
            self.policy_optimizer.synchronize = synchronize
            self.value_optimizer.synchronize = synchronize
            if self.world.rank:  # each rank samples its own responses
                torch.manual_seed(sampling_seed(config.seed, self.world.rank))

    def _plan_memory(self, policy_dir: Path, reward_dir: Path) -> MemoryPlan:
        """Estimate the run's memory from the models' configs (no weights loaded yet), log
        it, and refuse (:class:`ConfigError`) a run that cannot fit the device."""
        from transformers import AutoConfig

        from training.ml.scoring import ENSEMBLE_MANIFEST

        config = self.config
        manifest_file = reward_dir / ENSEMBLE_MANIFEST
        members = (
            [reward_dir / m for m in json.loads(manifest_file.read_text())["members"]]
            if manifest_file.exists()
            else [reward_dir]
        )
        reward_tokenizer = load_tokenizer(members[0])
        prompt_length = max(len(prompt_ids(self.tokenizer, p)) for p in self.prompts)
        if self.world.distributed:  # each process holds its share of the batches
            config = replace(
                config, batch_size=self.batch_size, mini_batch_size=self.mini_batch_size
            )
        inputs = PlanInputs.from_ppo_config(
            config,
            precision=self.precision,
            prompt_length=prompt_length,
            reward_members=len(members),
            critic_from_reward=reward_tokenizer.get_vocab() == self.tokenizer.get_vocab(),
        )
        plan = estimate(
            ModelShape.from_config(AutoConfig.from_pretrained(policy_dir)),
            ModelShape.from_config(AutoConfig.from_pretrained(members[0])),
            inputs,
            overhead=CUDA_OVERHEAD if self.device.startswith("cuda") else 0,
        )
        logger.info("%s", plan.summary())
        if config.memory_limit_gib:
            limit, source = int(config.memory_limit_gib * 1024**3), "memory_limit_gib"
        else:
            limit, source = available_memory(self.device)
        check_fits(plan, limit, source)
        return plan

    # --- rollout ------------------------------------------------------------------------

    def _logprobs(
        self, model: Any, batch: dict[str, Any], query_length: int, *, with_entropy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return response_logprobs(
            model,
            batch,
            query_length,
            self.config.temperature,
            chunk_size=self.config.logprob_chunk_size,
            with_entropy=with_entropy,
        )

    def _reference_logprobs(self, batch: dict[str, Any], query_length: int) -> torch.Tensor:
        if self.reference is not None:
            return self._logprobs(self.reference, batch, query_length)[0]
        with self.policy.disable_adapter():
            return self._logprobs(self.policy, batch, query_length)[0]

    def _forward_passes(
        self, batch: dict[str, torch.Tensor], query_length: int, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """Policy and reference log-probs, values and the mean entropy of a rollout batch,
        ``rollout_forward_batch_size`` episodes per forward pass."""
        size = batch["input_ids"].shape[0]
        chunk = self.config.rollout_forward_batch_size or size
        logprobs, ref_logprobs, values, entropies = [], [], [], []
        for start in range(0, size, chunk):
            part = {k: v[start : start + chunk] for k, v in batch.items()}
            lp, entropy = self._logprobs(self.policy, part, query_length, with_entropy=True)
            assert entropy is not None
            logprobs.append(lp)
            entropies.append(entropy)
            ref_logprobs.append(self._reference_logprobs(part, query_length))
            values.append(self.value(**part)[:, query_length - 1 : -1])
        mean_entropy = masked_mean(torch.cat(entropies), mask).item()
        return torch.cat(logprobs), torch.cat(ref_logprobs), torch.cat(values), mean_entropy

    @torch.no_grad()
    def rollout(self, prompts: list[Prompt]) -> Rollout:
        """Sample one response per prompt and compute log-probs, values and scores."""
        config, tokenizer = self.config, self.tokenizer
        started = time.perf_counter()
        self.policy.eval()
        queries = {k: v.to(self.device) for k, v in encode_prompts(tokenizer, prompts).items()}
        output = self.policy.generate(
            **queries,
            do_sample=True,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=0,
            max_new_tokens=config.max_new_tokens,
            eos_token_id=self.stop_ids,
            pad_token_id=tokenizer.pad_token_id,
        )
        sampled = split_responses(tokenizer, queries, output, self.stop_ids)
        batch, query_length = sampled.batch, sampled.query_length
        mask, finished, texts = sampled.mask, sampled.finished, sampled.texts
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        self.timings["generation"] += time.perf_counter() - started

        started = time.perf_counter()
        scored = self.scorer.score_exchanges(
            prompts,
            texts,
            content_ids=sampled.content_ids if self.score_ids else None,
            batch_size=config.rollout_forward_batch_size or 32,
        )
        raw, truncated = scored.combined(config.ensemble_lambda), scored.truncated
        raw, empty = floor_empty_responses(raw, texts, config.empty_response_penalty)
        scores = torch.tensor(raw, device=self.device, dtype=torch.float32)
        scores = scores - config.missing_eos_penalty * (~finished).float()
        logprobs, ref_logprobs, values, entropy = self._forward_passes(batch, query_length, mask)
        self.timings["scoring"] += time.perf_counter() - started
        return Rollout(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=batch["position_ids"],
            query_length=query_length,
            mask=mask,
            logprobs=logprobs.float(),
            ref_logprobs=ref_logprobs.float(),
            values=values.float() * mask,
            scores=scores,
            finished=finished,
            texts=texts,
            entropy=entropy,
            empty=empty,
            truncated=truncated,
        )

    # --- update -------------------------------------------------------------------------

    def train_step(self, prompts: list[Prompt]) -> dict[str, float]:
        """One rollout and the PPO epochs over it; returns the step's metrics."""
        config = self.config
        rollout = self.rollout(prompts)
        self.last_texts = rollout.texts
        started = time.perf_counter()
        mask = rollout.mask
        kl = kl_per_token(rollout.logprobs, rollout.ref_logprobs, config.kl_estimator) * mask
        sequence_kl = kl.sum(dim=1).mean().item()
        if self.world.distributed:  # every rank's β follows the mean KL of the whole step
            (sequence_kl,) = distributed.all_reduce_mean([sequence_kl])
        if sequence_kl > config.kl_hard_stop:
            raise KLExplosion(
                f"mean KL {sequence_kl:.2f} nats exceeds kl_hard_stop={config.kl_hard_stop} "
                f"at step {self.step + 1}"
            )
        scores = rollout.scores
        values = rollout.values
        if config.normalize_reward:
            frozen_at = config.reward_norm_rollouts * config.batch_size
            if not frozen_at or self.moments.count < frozen_at:
                # every rank's scores: the same statistics on every rank
                self.moments.update(distributed.all_gather(scores))
                if frozen_at and self.moments.count >= frozen_at and self.value_from_reward:
                    # the critic starts as the reward head: bring its output to the units
                    # of the normalized returns it learns, once the statistics are fixed
                    mean, std = self.moments.mean, self.moments.std
                    self.value.standardize_outputs(mean, std)
                    values = (values - mean) / std * mask
            scores = (scores - self.moments.mean) / self.moments.std
        if config.reward_clip:
            scores = scores.clamp(-config.reward_clip, config.reward_clip)
        if self.step == 0 and config.adaptive_kl and config.auto_kl_coef:
            assert isinstance(self.kl_controller, AdaptiveKLController)
            # every rank's scores: the same starting β on every rank
            self.kl_controller.calibrate(distributed.all_gather(scores).float().std().item())
        kl_coef = self.kl_controller.value
        rewards = shaped_rewards(scores, kl, mask, kl_coef)
        advantages, returns = gae(rewards, values, mask, config.gamma, config.lam)
        if config.whiten_advantages:
            advantages = self._whiten(advantages, mask)
        update_policy = self.step >= config.value_warmup_steps
        stats = self._ppo_epochs(rollout, advantages, returns, update_policy)
        self.kl_controller.update(sequence_kl, config.batch_size)
        self.timings["training"] += time.perf_counter() - started
        self.step += 1
        lengths = mask.sum(dim=1)
        metrics = {
            "reward": rollout.scores.mean().item(),
            "reward_normalized": scores.mean().item(),
            "kl": sequence_kl,
            "kl_coef": kl_coef,
            "entropy": rollout.entropy,
            "response_length": lengths.float().mean().item(),
            "eos_rate": rollout.finished.float().mean().item(),
            "empty_rate": rollout.empty / max(len(rollout.texts), 1),
            "reward_truncated": float(rollout.truncated),
            "explained_variance": explained_variance(rollout.values, returns, mask),
            **stats,
        }
        if self.world.distributed:
            metrics = self._global_metrics(metrics, rollout, returns)
        return metrics

    def _whiten(self, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Zero-mean, unit-variance advantages over the whole step's batch (every rank's)."""
        if not self.world.distributed:
            return masked_whiten(advantages, mask)
        mean, var = global_masked_mean_var(advantages, mask)
        return (advantages - mean) * (var + 1e-8) ** -0.5 * mask

    def _global_metrics(
        self, metrics: dict[str, float], rollout: Rollout, returns: torch.Tensor
    ) -> dict[str, float]:
        """A step's metrics over every rank's episodes (the same dict on every rank): means
        over the ranks (each holds as many episodes), the entropy weighted by response
        tokens, the truncated count summed, the explained variance of the whole batch; the
        KL and β are the whole step's already."""
        own = ("kl", "kl_coef", "entropy", "reward_truncated", "explained_variance")
        averaged = [k for k in metrics if k not in own]
        tokens = rollout.mask.sum().item()
        sums = distributed.all_reduce_sum(
            [
                *(metrics[k] for k in averaged),
                metrics["entropy"] * tokens,
                tokens,
                metrics["reward_truncated"],
            ]
        )
        size = self.world.size
        result = dict(metrics)
        for key, total in zip(averaged, sums, strict=False):
            result[key] = total / size
        entropy_sum, token_sum, truncated = sums[len(averaged) :]
        result["entropy"] = entropy_sum / max(token_sum, 1.0)
        result["reward_truncated"] = truncated
        _, var_returns = global_masked_mean_var(returns, rollout.mask)
        _, var_residual = global_masked_mean_var(returns - rollout.values, rollout.mask)
        result["explained_variance"] = (
            math.nan if var_returns == 0 else 1.0 - var_residual / var_returns
        )
        return result

    def _ppo_epochs(
        self, rollout: Rollout, advantages: torch.Tensor, returns: torch.Tensor, update_policy: bool
    ) -> dict[str, float]:
        config = self.config
        self.policy.train()
        self.value.train()
        totals: dict[str, float] = {
            "policy_loss": 0.0,
            "value_loss": 0.0,
            "clip_fraction": 0.0,
            "value_clip_fraction": 0.0,
            "approx_kl": 0.0,
        }
        updates = 0
        epochs_done = 0
        size = len(rollout.texts)
        mini_batch_size = self.mini_batch_size  # this process's share of each minibatch
        micro = mini_batch_size // config.gradient_accumulation_steps
        for _ in range(config.ppo_epochs):
            order = torch.randperm(size, device=self.device)
            stop_epoch = False
            for start in range(0, size, mini_batch_size):
                index = order[start : start + mini_batch_size]
                tokens = rollout.mask[index].sum().clamp(min=1)
                scale = self._token_share(tokens)
                step: dict[str, float] = dict.fromkeys(totals, 0.0)
                for part in index.split(micro):
                    # each micro-batch's masked means weighted by its share of the
                    # minibatch's tokens: the summed gradients are the minibatch's
                    weight = rollout.mask[part].sum() / tokens
                    loss_weight = weight if scale is None else weight * scale
                    for key, value in self._micro_batch(
                        rollout, part, advantages, returns, update_policy, loss_weight
                    ).items():
                        step[key] += value * float(weight)
                self.value_optimizer.step(config.max_grad_norm)
                if update_policy:
                    self.policy_optimizer.step(config.max_grad_norm)
                    approx_kl = step["approx_kl"]
                    if self.world.distributed and config.max_approx_kl:
                        # every rank stops the epochs at the same minibatch
                        (approx_kl,) = distributed.all_reduce_mean([approx_kl])
                    stop_epoch = bool(config.max_approx_kl) and (approx_kl > config.max_approx_kl)
                for key, value in step.items():
                    totals[key] += value
                updates += 1
                if stop_epoch:
                    break
            epochs_done += 1
            if stop_epoch:
                break
        averaged = {k: v / max(updates, 1) for k, v in totals.items()}
        return averaged | {"ppo_epochs_done": float(epochs_done)}

    def _token_share(self, tokens: torch.Tensor) -> float | None:
        """Data-parallel: this rank's share of the whole minibatch's response tokens times the
        number of ranks. Its losses are scaled by it, so that the gradients averaged over the
        ranks are those of the token mean over the whole minibatch, as one process computes
        it (None in one process: nothing to scale)."""
        if not self.world.distributed:
            return None
        local = tokens.item()
        (total,) = distributed.all_reduce_sum([local])
        return self.world.size * local / max(total, 1.0)

    def _micro_batch(
        self,
        rollout: Rollout,
        index: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        update_policy: bool,
        weight: torch.Tensor,
    ) -> dict[str, float]:
        """Forward and backward of one micro-batch (loss scaled by ``weight``); its stats."""
        config = self.config
        q = rollout.query_length
        mb = {
            "input_ids": rollout.input_ids[index],
            "attention_mask": rollout.attention_mask[index],
            "position_ids": rollout.position_ids[index],
        }
        mask = rollout.mask[index]
        values = self.value(**mb)[:, q - 1 : -1]
        vloss, vclip = value_loss(
            values, rollout.values[index], returns[index], mask, config.cliprange_value
        )
        loss = config.vf_coef * vloss
        stats = {"value_loss": vloss.item(), "value_clip_fraction": vclip}
        if update_policy:
            logprobs, _ = self._logprobs(self.policy, mb, q)
            pl = policy_loss(
                logprobs, rollout.logprobs[index], advantages[index], mask, config.cliprange
            )
            loss = loss + pl.loss
            stats |= {
                "policy_loss": pl.loss.item(),
                "clip_fraction": pl.clip_fraction,
                "approx_kl": pl.approx_kl,
            }
        (loss * weight).backward()
        return stats

    # --- the run ------------------------------------------------------------------------

    def next_prompts(self) -> list[Prompt]:
        """This process's prompts of the next step: the step's batch is drawn from the run's
        seeded sequence (the same on every rank, as in one process) and each rank takes its
        own contiguous slice of it."""
        batch = [self.rng.choice(self.prompts) for _ in range(self.config.batch_size)]
        if not self.world.distributed:
            return batch
        start = self.world.rank * self.batch_size
        return batch[start : start + self.batch_size]

    def step_texts(self) -> list[str]:
        """The last step's responses of every rank, in rank order (on every rank)."""
        if not self.world.distributed:
            return self.last_texts
        return [t for texts in distributed.all_gather_objects(self.last_texts) for t in texts]

    def fingerprint(self) -> dict[str, Any]:
        """What must be identical on every rank of a data-parallel run."""
        return {
            "rank": self.world.rank,
            "processes": self.world.size,
            "step": self.step,
            "policy": state_digest(self.policy),
            "value": state_digest(self.value),
            "kl_coef": self.kl_controller.value,
            "reward_mean": self.moments.mean,
            "reward_var": self.moments.var,
        }

    def save_checkpoint(self, folder: Path) -> None:
        """Write the resumable state (every rank calls this; rank 0 writes, with each rank's
        torch RNG state)."""
        rng_states = (
            distributed.all_gather_objects(torch.get_rng_state())
            if self.world.distributed
            else None
        )
        if not self.world.is_main:
            return
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self.step,
            "policy": self.policy.state_dict(),
            "value": self.value.state_dict(),
            "precision": self.precision,
            "policy_optimizer": self.policy_optimizer.state_dict(),
            "value_optimizer": self.value_optimizer.state_dict(),
            "kl_coef": self.kl_controller.value,
            "moments": self.moments.state(),
            "rng": self.rng.getstate(),
            "torch_rng": torch.get_rng_state(),
        }
        if rng_states is not None:
            state |= {"processes": self.world.size, "torch_rng_ranks": rng_states}
        partial = folder / "ppo-state.pt.partial"
        torch.save(state, partial)
        partial.replace(folder / "ppo-state.pt")  # never a half-written checkpoint

    def load_checkpoint(self, folder: Path) -> bool:
        path = folder / "ppo-state.pt"
        if not path.exists():
            return False
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.step = int(state["step"])
        self.policy.load_state_dict(state["policy"])
        missing, unexpected = self.value.load_state_dict(state["value"], strict=False)
        if unexpected or set(missing) - {"out_scale", "out_shift"}:  # older: no output scaling
            raise RuntimeError(f"value model checkpoint mismatch: {missing} {unexpected}")
        self.policy_optimizer.load_state_dict(state["policy_optimizer"])
        self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.kl_controller.value = float(state["kl_coef"])
        self.moments.load(state["moments"])
        self.rng.setstate(state["rng"])
        ranks = state.get("torch_rng_ranks")
        if self.world.distributed and ranks is not None and len(ranks) == self.world.size:
            torch.set_rng_state(ranks[self.world.rank].cpu())
        else:
            torch.set_rng_state(state["torch_rng"].cpu())
            if self.world.rank:  # saved by another number of processes: a stream of its own
                torch.manual_seed(sampling_seed(self.config.seed, self.world.rank) + self.step)
        return True

    def save_policy(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        policy = self.policy.merge_and_unload() if self.config.lora_rank else self.policy
        policy.save_pretrained(out)
        self.tokenizer.padding_side = "right"
        self.tokenizer.save_pretrained(out)
        self.tokenizer.padding_side = "left"


def train_ppo(
    *,
    policy: Path,
    reward: Path,
    prompts: list[Prompt],
    out: Path,
    config: PPOConfig,
    on_step: StepCallback | None = None,
    checkpoint_dir: Path | None = None,
    on_checkpoint: Callable[[], bool | None] | None = None,
    device: str | None = None,
    monitors: Sequence[Monitor] = (),
) -> dict[str, Any]:
    """Run PPO, save the policy to ``out`` and return the metrics (with the per-step history).

    With ``checkpoint_dir`` the run resumes from the last checkpoint there; ``on_checkpoint``
    is called just before each checkpoint is saved (a run writes its buffered metrics there,
    so every step up to a checkpoint is on record when a worker is lost); when it returns
    True the checkpoint is not saved and training stops (the run was taken over by another
    worker). ``on_step`` may return True to stop early (a cancel); the policy trained so far
    is still saved.

    Under a multi-process launcher (``WORLD_SIZE`` > 1, see :mod:`training.ml.distributed`)
    every process calls this alike and the run is data-parallel: ``batch_size`` and
    ``mini_batch_size`` are split over the processes, gradients are averaged over them, and
    the reward statistics, β, whitening and metrics are the whole step's. Only rank 0 calls
    ``on_step``, ``on_checkpoint`` and the monitors (over every rank's responses) and writes
    ``out`` and the checkpoint; its stop decisions are broadcast, so every rank stops after
    the same step. Every rank returns the same result (rank 0's), once ``out`` is written.
    """
    trainer = PPOTrainer(
        policy_dir=policy, reward_dir=reward, prompts=prompts, config=config, device=device
    )
    main = trainer.world.is_main
    resumed = checkpoint_dir is not None and trainer.load_checkpoint(checkpoint_dir)
    history: list[dict[str, float]] = []
    stopped = False
    started = time.perf_counter()
    while trainer.step < config.steps:
        metrics = trainer.train_step(trainer.next_prompts())
        if monitors:
            texts = trainer.step_texts()
            monitored = {m.name: m.mean(texts) for m in monitors} if main else {}
            metrics.update(distributed.broadcast_object(monitored))
        metrics["step"] = trainer.step
        metrics["episodes"] = trainer.step * config.batch_size
        history.append(metrics)
        stop = main and on_step is not None and on_step(trainer.step, config.steps, metrics)
        if trainer.world.distributed:
            stop = distributed.broadcast_flag(bool(stop))
        if (
            checkpoint_dir is not None
            and config.checkpoint_steps
            and (trainer.step % config.checkpoint_steps == 0)
        ):
            taken_over = main and on_checkpoint is not None and on_checkpoint() is True
            if distributed.broadcast_flag(taken_over):
                stopped = True  # the run is no longer this process's: leave its checkpoints
                break
            trainer.save_checkpoint(checkpoint_dir)
        if stop:
            stopped = True
            break
    wall = time.perf_counter() - started
    checksums = os.environ.get(CHECKSUMS_ENV)
    if checksums:
        folder = Path(checksums)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank-{trainer.world.rank}.json").write_text(json.dumps(trainer.fingerprint()))
    if main:
        trainer.save_policy(out)
    episodes = len(history) * config.batch_size
    final = history[-1] if history else {}
    result: dict[str, Any] = {
        "algorithm": "ppo",
        "steps": trainer.step,
        "episodes": trainer.step * config.batch_size,
        "resumed": bool(resumed),
        "stopped_early": stopped,
        "precision": trainer.precision,
        "device": trainer.device,
        "processes": trainer.world.size,
        "memory_plan": trainer.memory_plan.as_dict(),
        "wall_seconds": round(wall, 3),
        "episodes_per_second": round(episodes / wall, 2) if wall > 0 else None,
        "time_share": {
            k: round(v / max(sum(trainer.timings.values()), 1e-9), 4)
            for k, v in trainer.timings.items()
        },
        "final": {k: round(v, 6) for k, v in final.items()},
        "history": history,
    }
    if main:
        (out / "preflab_metrics.json").write_text(json.dumps(result, indent=2))
    # rank 0's result on every rank, once the model is saved
    return distributed.broadcast_object(result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--policy", type=Path, required=True, help="Starting policy directory.")
    parser.add_argument("--reward", type=Path, required=True, help="Reward model or ensemble.")
    parser.add_argument("--prompts", type=Path, required=True, help='JSONL of {"prompt": …}.')
    parser.add_argument("--out", type=Path, required=True, help="Where the policy is saved.")
    parser.add_argument("--config", type=Path, help="JSON file of PPOConfig fields.")
    parser.add_argument("--checkpoints", type=Path, help="Resumable checkpoint folder.")
    args = parser.parse_args(argv)
    main_process = distributed.is_main_process()  # under a launcher: rank 0 reports
    logging.basicConfig(
        level=logging.INFO if main_process else logging.WARNING, format="%(message)s"
    )
    try:
        config = parse_ppo_config(json.loads(args.config.read_text()) if args.config else {})
        prompts = load_prompts(args.prompts)
    except ConfigError as exc:
        parser.error(f"bad config: {exc}")

    def report(step: int, total: int, metrics: dict[str, float]) -> bool:
        shown = {k: round(metrics[k], 4) for k in ("reward", "kl", "kl_coef", "entropy")}
        print(json.dumps({"step": step, "of": total, **shown}), flush=True)
        return False

    finished = False
    try:
        result = train_ppo(
            policy=args.policy,
            reward=args.reward,
            prompts=prompts,
            out=args.out,
            config=config,
            on_step=report,
            checkpoint_dir=args.checkpoints,
        )
        finished = True
    except ConfigError as exc:  # refused before training: the memory estimate
        parser.error(f"refused: {exc}")
    finally:
        distributed.shutdown(finished)
    if main_process:
        summary = {k: v for k, v in result.items() if k != "history"}
        print(json.dumps({"config": asdict(config), "metrics": summary}, indent=2))
    return 0


if __name__ == "__main__":
    distributed.exit_code(main())
