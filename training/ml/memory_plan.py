"""How much memory a PPO run needs, from the models' shapes and the PPO config, before any
weight is loaded: weights of the four roles, gradients, optimizer state and the activations
of the configured micro-batches (the vocabulary projection's logits counted on their own).
PPO logs the estimate and refuses a run that cannot fit. Plain Python: imports no Django.

The model is a decoder of the Llama / Qwen2 / Mistral family: embeddings, ``layers`` blocks
of attention (grouped-query: ``kv_heads`` key/value heads) and a gated MLP (gate, up, down),
RMSNorms, an LM head (tied or not). Counts are exact for these; activations are an estimate
of what autograd keeps (see :func:`layer_activation_bytes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.ml.config import ConfigError

GIB = 1024**3
CUDA_OVERHEAD = 1 * GIB  # CUDA context, cuBLAS workspaces, allocator slack
REWARD_BATCH = 32  # the reward model's scoring batch when rollout chunks are off


# The published configs of the models the benchmarks plan for (no download: the numbers).
PUBLISHED_SHAPES: dict[str, dict[str, Any]] = {
    "Qwen2-0.5B": {
        "model_type": "qwen2",
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    },
    "Qwen2-1.5B": {
        "model_type": "qwen2",
        "hidden_size": 1536,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "intermediate_size": 8960,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    },
    "Llama-3-8B": {
        "model_type": "llama",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
    },
    "7B (Llama-2-7B)": {
        "model_type": "llama",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "intermediate_size": 11008,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
    },
}


@dataclass(frozen=True)
class ModelShape:
    """The numbers of an ``AutoConfig`` that size a decoder."""

    hidden: int
    layers: int
    vocab: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    tie_embeddings: bool
    attention_bias: bool = False  # Qwen2: biases on q, k, v

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        """From a transformers config (or a dict with the same keys)."""

        def get(name: str, default: Any = None) -> Any:
            if isinstance(config, Mapping):
                return config.get(name, default)
            return getattr(config, name, default)

        hidden, heads = int(get("hidden_size")), int(get("num_attention_heads"))
        model_type = get("model_type", "")
        return cls(
            hidden=hidden,
            layers=int(get("num_hidden_layers")),
            vocab=int(get("vocab_size")),
            intermediate=int(get("intermediate_size")),
            heads=heads,
            kv_heads=int(get("num_key_value_heads") or heads),
            head_dim=int(get("head_dim") or hidden // heads),
            tie_embeddings=bool(get("tie_word_embeddings", False)),
            attention_bias=bool(get("attention_bias", model_type == "qwen2")),
        )

    def linears(self) -> list[tuple[int, int]]:
        """(in, out) of each linear layer of one block: q, k, v, o, gate, up, down."""
        h, i = self.hidden, self.intermediate
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return [(h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h)]

    def backbone_parameters(self) -> int:
        """Embeddings, blocks and the final norm: what a value or reward model shares."""
        block = sum(a * b for a, b in self.linears()) + 2 * self.hidden
        if self.attention_bias:
            block += (self.heads + 2 * self.kv_heads) * self.head_dim
        return self.vocab * self.hidden + self.layers * block + self.hidden

    def causal_lm_parameters(self) -> int:
        head = 0 if self.tie_embeddings else self.vocab * self.hidden
        return self.backbone_parameters() + head

    def scalar_head_parameters(self) -> int:
        """A backbone with a one-output linear head (reward and value models)."""
        return self.backbone_parameters() + self.hidden

    def lora_parameters(self, rank: int) -> int:
        """LoRA A and B of ``rank`` on every linear layer of every block (peft's
        ``all-linear``: the LM head excluded)."""
        return self.layers * sum(rank * (a + b) for a, b in self.linears())


@dataclass(frozen=True)
class PlanInputs:
    """What the estimate reads of a PPO config (``from_ppo_config``) and of the prompts."""

    precision: str  # resolved: fp32, bf16 or bf16-pure
    batch_size: int
    mini_batch_size: int
    gradient_accumulation_steps: int = 1
    rollout_forward_batch_size: int = 0
    logprob_chunk_size: int = 4
    prompt_length: int = 128
    response_length: int = 24
    lora_rank: int = 0
    critic_lora_rank: int = 0
    gradient_checkpointing: bool = False
    reward_members: int = 1
    critic_from_reward: bool = True  # same vocabulary: the value model copies the reward's

    @classmethod
    def from_ppo_config(
        cls,
        config: Any,
        *,
        precision: str,
        prompt_length: int,
        reward_members: int = 1,
        critic_from_reward: bool = True,
    ) -> PlanInputs:
        return cls(
            precision=precision,
            batch_size=config.batch_size,
            mini_batch_size=config.mini_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            rollout_forward_batch_size=config.rollout_forward_batch_size,
            logprob_chunk_size=config.logprob_chunk_size,
            prompt_length=prompt_length,
            response_length=config.max_new_tokens,
            lora_rank=config.lora_rank,
            critic_lora_rank=config.critic_lora_rank,
            gradient_checkpointing=config.gradient_checkpointing,
            reward_members=reward_members,
            critic_from_reward=critic_from_reward,
        )

    @property
    def weight_bytes(self) -> int:
        return 4 if self.precision == "fp32" else 2

    @property
    def micro_batch(self) -> int:
        return max(1, self.mini_batch_size // self.gradient_accumulation_steps)

    @property
    def sequence(self) -> int:
        return self.prompt_length + self.response_length


def layer_activation_bytes(shape: ModelShape, tokens: int, dtype_bytes: int, lora: int) -> int:
    """What autograd keeps of one block for ``tokens`` tokens: the two RMSNorms' inputs and
    outputs (plus their fp32 upcast), q, k, v after rotary, the attention output (SDPA keeps
    no [T, T] scores), gate, up, SiLU(gate) and the product entering down; LoRA adds each
    adapter's rank-sized middle."""
    h, i = shape.hidden, shape.intermediate
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    elements = 4 * h + 2 * q + 2 * kv + 4 * i + (7 * lora if lora else 0)
    return tokens * (elements * dtype_bytes + 2 * h * 4)


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per term; ``peak`` = persistent terms + the larger of the rollout and the
    training transients (they never coexist)."""

    terms: dict[str, int]
    persistent: tuple[str, ...]
    rollout: tuple[str, ...]
    training: tuple[str, ...]

    @property
    def rollout_bytes(self) -> int:
        return sum(self.terms[k] for k in self.rollout)

    @property
    def training_bytes(self) -> int:
        return sum(self.terms[k] for k in self.training)

    @property
    def peak(self) -> int:
        return sum(self.terms[k] for k in self.persistent) + max(
            self.rollout_bytes, self.training_bytes
        )

    def biggest(self, n: int = 3) -> list[tuple[str, int]]:
        return sorted(self.terms.items(), key=lambda kv: -kv[1])[:n]

    def as_dict(self) -> dict[str, Any]:
        return {
            "terms_gib": {k: round(v / GIB, 3) for k, v in self.terms.items()},
            "peak_gib": round(self.peak / GIB, 3),
            "phase": "training" if self.training_bytes >= self.rollout_bytes else "rollout",
        }

    def summary(self) -> str:
        """One log line: the peak and every nonzero term, in GiB (MiB below 1 GiB)."""
        unit, size = ("GiB", GIB) if self.peak >= GIB else ("MiB", 1024**2)
        parts = ", ".join(f"{k} {v / size:.2f}" for k, v in self.terms.items() if v)
        return f"memory estimate: peak {self.peak / size:.2f} {unit} ({parts})"


def estimate(
    policy: ModelShape, reward: ModelShape, inputs: PlanInputs, *, overhead: int = 0
) -> MemoryPlan:
    """The memory of a PPO run of ``policy`` against ``reward`` (see the module docstring).

    Weights: policy; reference (none under LoRA: the policy with adapters disabled); value
    model (the reward model's shape when it reads the policy's tokens, else the policy's
    backbone) and reward models, all in the run's dtype. Trained parameters (the policy's
    and the value model's, or their LoRA adapters and the value head): gradients in the
    weights' dtype, fp32 under mixed bf16 (the masters' gradients); AdamW's two moments,
    fp32 except under bf16-pure; fp32 master weights under mixed bf16. Activations: both
    models' blocks for one micro-batch (only each block's input with checkpointing, plus one
    block being recomputed), the policy's response logits [micro, R+1, V] and their
    gradient, and one log-prob chunk's fp32 logits three times over (scaled, softmax,
    gradient). Rollout: the generation KV cache and last-token logits over the whole batch,
    the forward chunk's logits and one log-prob chunk's fp32 work."""
    b = inputs.weight_bytes
    pure = inputs.precision == "bf16-pure"
    mixed = inputs.precision == "bf16"
    critic = reward if inputs.critic_from_reward else policy
    policy_weights = policy.causal_lm_parameters()
    policy_trained = policy_weights
    if inputs.lora_rank:
        policy_trained = policy.lora_parameters(inputs.lora_rank)
        policy_weights += policy_trained
    critic_weights = critic.scalar_head_parameters()
    critic_trained = critic_weights
    if inputs.critic_lora_rank:
        critic_trained = critic.lora_parameters(inputs.critic_lora_rank) + critic.hidden
        critic_weights += critic_trained - critic.hidden
    trained = policy_trained + critic_trained
    grad_bytes = 2 if pure else 4
    state_bytes = 4 if pure else 8

    micro, seq, resp = inputs.micro_batch, inputs.sequence, inputs.response_length
    tokens = micro * seq

    def blocks(shape: ModelShape, lora: int) -> int:
        one = layer_activation_bytes(shape, tokens, b, lora)
        if inputs.gradient_checkpointing:
            return shape.layers * tokens * shape.hidden * b + one
        return shape.layers * one

    chunk = min(inputs.logprob_chunk_size, micro)
    logits_train = 2 * micro * (resp + 1) * policy.vocab * b + 3 * chunk * resp * policy.vocab * 4
    forward_rows = inputs.rollout_forward_batch_size or inputs.batch_size
    rollout_chunk = min(inputs.logprob_chunk_size, forward_rows)
    kv = policy.kv_heads * policy.head_dim
    terms = {
        "policy weights": policy_weights * b,
        "reference weights": 0 if inputs.lora_rank else policy.causal_lm_parameters() * b,
        "value weights": critic_weights * b,
        "reward weights": inputs.reward_members * reward.scalar_head_parameters() * b,
        "gradients": trained * grad_bytes,
        "optimizer state": trained * state_bytes,
        "master weights": trained * 4 if mixed else 0,
        "activations (policy)": blocks(policy, inputs.lora_rank),
        "activations (value)": blocks(critic, inputs.critic_lora_rank),
        "logits (training)": logits_train,
        "generation kv cache": inputs.batch_size * seq * policy.layers * 2 * kv * b,
        "logits (rollout)": (
            forward_rows * (resp + 1) * policy.vocab * b
            + 3 * rollout_chunk * resp * policy.vocab * 4
            + 3 * inputs.batch_size * policy.vocab * 4  # sampling: logits, softmax, sort
        ),
        "overhead": overhead,
    }
    return MemoryPlan(
        terms=terms,
        persistent=(
            "policy weights",
            "reference weights",
            "value weights",
            "reward weights",
            "optimizer state",
            "master weights",
            "overhead",
        ),
        rollout=("generation kv cache", "logits (rollout)"),
        training=("gradients", "activations (policy)", "activations (value)", "logits (training)"),
    )


def available_memory(device: str) -> tuple[int, str]:
    """Bytes a run may use on ``device`` and where the number comes from: a CUDA device's
    total memory (every model of a PPO run lives on that one device), or on CPU the
    available RAM (``psutil`` when installed, else /proc/meminfo's MemAvailable)."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
        properties = torch.cuda.get_device_properties(index)
        return int(properties.total_memory), f"{properties.name} (cuda:{index}) total memory"
    try:
        import psutil

        return int(psutil.virtual_memory().available), "available RAM"
    except ImportError:
        pass
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "available RAM (MemAvailable)"
    raise RuntimeError("cannot tell how much memory is available")


def check_fits(plan: MemoryPlan, limit: int, source: str) -> None:
    """A :class:`ConfigError` on ``memory`` when the estimate exceeds ``limit``, naming the
    biggest terms and what reduces them."""
    if plan.peak <= limit:
        return
    biggest = ", ".join(f"{name} {size / GIB:.2f} GiB" for name, size in plan.biggest(3))
    raise ConfigError(
        {
            "memory": (
                f"estimated peak {plan.peak / GIB:.2f} GiB exceeds {limit / GIB:.2f} GiB "
                f"({source}); biggest terms: {biggest}. Reduce them with lora_rank, "
                "critic_lora_rank, precision bf16, gradient_checkpointing, "
                "gradient_accumulation_steps or rollout_forward_batch_size"
            )
        }
    )


def table(rows: list[tuple[str, MemoryPlan]], limits: dict[str, int]) -> str:
    """A text table: one row per named plan, its main terms and peak in GiB, and whether it
    fits each limit."""
    head = (
        f"{'run':<34}{'weights':>9}{'grads':>8}{'optim':>8}{'activ':>8}{'logits':>8}"
        f"{'peak':>8}" + "".join(f"{name:>10}" for name in limits)
    )
    lines = [head, "-" * len(head)]
    for name, plan in rows:
        t = plan.terms
        weights = sum(v for k, v in t.items() if k.endswith("weights") and k != "master weights")
        optim = t["optimizer state"] + t["master weights"]
        activ = t["activations (policy)"] + t["activations (value)"]
        logits = max(t["logits (training)"], t["logits (rollout)"])
        cells = [weights, t["gradients"], optim, activ, logits, plan.peak]
        fits = "".join(f"{'fits' if plan.peak <= limit else 'NO':>10}" for limit in limits.values())
        lines.append(
            f"{name:<34}{cells[0] / GIB:>9.1f}"
            + "".join(f"{c / GIB:>8.1f}" for c in cells[1:])
            + fits
        )
    return "\n".join(lines)
