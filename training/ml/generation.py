"""Sampling candidate responses from a policy artifact, and scoring them with a reward model.
Plain Python: imports no Django (:mod:`training.generation` turns the candidates into
responses and comparisons).

Two backends:

- ``transformers`` — ``generate`` in batches of prompts, left-padded, ``do_sample=True`` with
  ``num_return_sequences=n``, stopping at the tokenizer's stop tokens (EOS and the chat
  template's end-of-turn token). Seeded: the same seed, prompts and ``batch_size`` give the
  same texts (on one device; kernels differ between devices). fp32 on CPU, bf16 on CUDA.
  Prompts are tokenized exactly as the PPO rollout tokenizes them, so the candidates come
  from the distribution the policy was optimized under.
- ``vllm`` — only when vLLM is installed (a GPU host); see :func:`_generate_vllm`.
  ``auto`` picks vLLM when it is importable and a CUDA device is present. ``use_vllm``
  (``true`` / ``false`` / ``"auto"``) says the same as ``backend`` (``vllm`` / ``transformers``
  / ``auto``) in TRL's words; asking for vLLM where it is missing is a :class:`ConfigError`
  naming what is missing (:mod:`training.ml.vllm_support`).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.ml.config import SEED_CHECK, Check, ConfigError, parse_dataclass
from training.ml.prompts import Prompt, encode_prompts, prompt_ids, stop_token_ids
from training.ml.scoring import mean_std
from training.ml.tokenization import load_tokenizer
from training.ml.vllm_support import (
    AUTO,
    engine_kwargs,
    sampled_sequence,
    sampling_params_kwargs,
    use_vllm,
    vllm_host,
)

BACKENDS = ("auto", "transformers", "vllm")


@dataclass(frozen=True)
class SamplingConfig:
    n: int = field(default=2, metadata={"help": "Responses sampled per prompt."})
    temperature: float = field(
        default=0.7,
        metadata={"help": "Softmax temperature (0.7–1.0 is usual; PPO samples at 0.7)."},
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling (1: off)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Longest response sampled."})
    batch_size: int = field(
        default=8, metadata={"help": "Prompts per generate call (each yields n sequences)."}
    )
    seed: int = field(
        default=0,
        metadata={"help": "Seed of sampling (and of random pairing): same seed, same texts."},
    )
    backend: str = field(
        default="auto",
        metadata={
            "help": "'transformers', 'vllm', or 'auto' (vLLM when installed on a CUDA host)."
        },
    )


SAMPLING_CHECKS: dict[str, Check] = {
    "n": lambda v: 1 <= v <= 64,
    "temperature": (lambda v: 0 < v <= 2, "must be in (0, 2]"),
    "top_p": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "max_new_tokens": lambda v: 1 <= v <= 8192,
    "batch_size": lambda v: 1 <= v <= 1024,
    "seed": SEED_CHECK,
    "backend": (lambda v: v in BACKENDS, "must be auto, transformers or vllm"),
}


USE_VLLM_BACKENDS: dict[bool | str, str] = {True: "vllm", False: "transformers", AUTO: "auto"}


def parse_sampling_config(raw: Any) -> SamplingConfig:
    """Validate a JSON object into a :class:`SamplingConfig`; every problem named by field.

    ``use_vllm`` (``true`` / ``false`` / ``"auto"``) is read as ``backend`` (``vllm`` /
    ``transformers`` / ``auto``); given with a ``backend`` that says otherwise, both are
    named. Whether vLLM is there is checked where the generation runs
    (:func:`resolve_backend`)."""
    errors: dict[str, str] = {}
    if isinstance(raw, Mapping) and "use_vllm" in raw:
        raw = dict(raw)
        value = raw.pop("use_vllm")
        backend = USE_VLLM_BACKENDS.get(value) if isinstance(value, (bool, str)) else None
        if backend is None:
            errors["use_vllm"] = 'must be true, false or "auto"'
        elif "backend" in raw and raw["backend"] != backend:
            errors["use_vllm"] = f"says backend {backend!r}, and backend says {raw['backend']!r}"
            errors["backend"] = "contradicts use_vllm: give one of them"
        else:
            raw["backend"] = backend
    try:
        config = parse_dataclass(SamplingConfig, raw, SAMPLING_CHECKS)
    except ConfigError as exc:
        raise ConfigError(errors | exc.fields) from None
    if errors:
        raise ConfigError(errors)
    return config


@dataclass(frozen=True)
class Candidate:
    text: str  # decoded without special tokens, stripped
    finished: bool  # a stop token ended it (False: cut at max_new_tokens)
    num_tokens: int  # generated tokens, the stop token not counted
    token_ids: tuple[int, ...] = ()  # the sampled ids before the stop token
    source: str = ""  # the policy directory that sampled it (its tokenizer made the ids)


def vllm_available() -> bool:
    """vLLM is installed and a CUDA device is present."""
    host = vllm_host()
    return host.installed and host.cuda


def resolve_backend(backend: str, device: str | None = None) -> str:
    """The backend that will run: ``auto`` → vLLM when installed on a CUDA host (and no CPU
    device was asked for), else transformers. Asking for ``vllm`` where vLLM or CUDA is
    missing is a :class:`ConfigError` on ``backend`` naming what is missing."""
    if backend == "transformers":
        return backend
    if backend not in ("vllm", AUTO):
        raise ConfigError({"backend": "must be auto, transformers or vllm"})
    requested: bool | str = True if backend == "vllm" else AUTO
    cpu_requested = device is not None and not str(device).startswith("cuda")
    chosen = use_vllm(requested, vllm_host(), field="backend", cpu_requested=cpu_requested)
    return "vllm" if chosen else "transformers"


def generate_candidates(
    policy_dir: Path,
    prompts: Sequence[Prompt],
    config: SamplingConfig,
    *,
    device: str | None = None,
) -> list[list[Candidate]]:
    """``config.n`` sampled candidates per prompt, in prompt order.

    A prompt is plain text (continued as it is) or a conversation (rendered with the chat
    template and its generation prompt). The model is loaded here and released on return.
    """
    if not prompts:
        return []
    import torch

    backend = resolve_backend(config.backend, device)  # before anything is loaded
    tokenizer: Any = load_tokenizer(policy_dir, padding_side="left")
    stop_ids = stop_token_ids(tokenizer)
    if backend == "vllm":
        encoded = [prompt_ids(tokenizer, p) for p in prompts]
        return _generate_vllm(policy_dir, encoded, config, stop_ids, tokenizer)

    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    on_cuda = str(device).startswith("cuda")
    dtype = torch.bfloat16 if on_cuda and torch.cuda.is_bf16_supported() else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=dtype)
    model = model.to(device).eval()
    stops = torch.tensor(stop_ids, device=device)
    results: list[list[Candidate]] = []
    try:
        # Forked RNG: seeding here leaves the caller's random state as it was.
        with torch.random.fork_rng(devices=[torch.device(device)] if on_cuda else []):
            torch.manual_seed(config.seed)
            for start in range(0, len(prompts), config.batch_size):
                chunk = prompts[start : start + config.batch_size]
                queries = {k: v.to(device) for k, v in encode_prompts(tokenizer, chunk).items()}
                with torch.no_grad():
                    output = model.generate(
                        **queries,
                        do_sample=True,
                        temperature=config.temperature,
                        top_p=config.top_p,
                        top_k=0,  # no implicit top-50: sample the policy's distribution
                        max_new_tokens=config.max_new_tokens,
                        num_return_sequences=config.n,
                        eos_token_id=stop_ids,
                        pad_token_id=tokenizer.pad_token_id,
                    )
                # output: [prompts_in_batch * n, query_len + new_len]; rows grouped per prompt
                responses = output[:, queries["input_ids"].shape[1] :]  # [B*n, new_len]
                is_stop = torch.isin(responses, stops)  # [B*n, new_len]
                finished = is_stop.any(dim=1)  # [B*n]
                lengths = torch.where(
                    finished, is_stop.int().argmax(dim=1), responses.shape[1]
                )  # tokens before the first stop, [B*n]
                rows = [
                    Candidate(
                        text=tokenizer.decode(row[:length], skip_special_tokens=True).strip(),
                        finished=bool(done),
                        num_tokens=int(length),
                        token_ids=tuple(row[:length].tolist()),
                        source=str(policy_dir),
                    )
                    for row, length, done in zip(
                        responses.cpu(), lengths.tolist(), finished.tolist(), strict=True
                    )
                ]
                results.extend(rows[i : i + config.n] for i in range(0, len(rows), config.n))
    finally:
        del model
        if on_cuda:
            torch.cuda.empty_cache()
    return results


def _generate_vllm(
    policy_dir: Path,
    prompt_ids: list[list[int]],
    config: SamplingConfig,
    stop_ids: list[int],
    tokenizer: Any,
) -> list[list[Candidate]]:
    """The same sampling through vLLM (paged attention, continuous batching) on a GPU host:
    ``LLM(model=policy_dir).generate`` with :func:`~training.ml.vllm_support.
    sampling_params_kwargs` (temperature, top-p, ``max_new_tokens``, ``n``, seed, our stop
    tokens).

    Not run where the tests run (vLLM is not installed there); the settings mapping and the
    reading of its outputs are pure functions, tested. It takes the prompts already tokenized
    by the transformers tokenizer (``prompt_token_ids``), so both backends see identical
    inputs; vLLM batches by itself (``batch_size`` is ignored) and its seeded outputs differ
    from the transformers backend's. The engine is dropped on return, so that the reward
    model scoring next has the GPU.
    """
    import torch
    from vllm import LLM, SamplingParams

    llm = LLM(**engine_kwargs(policy_dir, seed=config.seed))
    try:
        params = SamplingParams(
            **sampling_params_kwargs(
                n=config.n,
                temperature=config.temperature,
                top_p=config.top_p,
                max_new_tokens=config.max_new_tokens,
                seed=config.seed,
                stop_token_ids=stop_ids,
            )
        )
        outputs = llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params)
    finally:
        del llm
        gc.collect()
        torch.cuda.empty_cache()
    stop_set = set(stop_ids)
    results: list[list[Candidate]] = []
    for request in outputs:
        group = []
        for output in request.outputs:
            sequence = sampled_sequence(output.token_ids, output.finish_reason, stop_set)
            group.append(
                Candidate(
                    text=tokenizer.decode(sequence.token_ids, skip_special_tokens=True).strip(),
                    finished=sequence.finished,
                    num_tokens=len(sequence.token_ids),
                    token_ids=sequence.token_ids,
                    source=str(policy_dir),
                )
            )
        results.append(group)
    return results


@dataclass(frozen=True)
class CandidateScore:
    reward: float  # ensemble mean (the single model's score for one model)
    std: float  # spread over ensemble members (0.0 for one model)
    members: tuple[float, ...] = ()  # each member's (standardized) score


def score_candidates(
    reward_dir: Path,
    prompts: Sequence[Prompt],
    candidates: Sequence[Sequence[Candidate]],
    *,
    device: str | None = None,
    batch_size: int = 32,
    max_length: int = 512,
) -> list[list[CandidateScore]]:
    """Reward of each prompt's candidates, as the reward model read exchanges in training:
    the sampled token ids when the policy that sampled a candidate shares the reward model's
    tokenizer, else its text through the reward model's tokenizer and chat template
    (:mod:`training.ml.reward_input`)."""
    from training.ml.scoring import RewardScorer

    flat = [(i, c) for i, group in enumerate(candidates) for c in group]
    if not flat:
        return [[] for _ in candidates]
    scorer = RewardScorer(reward_dir, device=device, max_length=max_length)
    sources = {c.source for _, c in flat if c.source and c.token_ids}
    shared = {s: scorer.shares_tokenizer(load_tokenizer(s)) for s in sources}
    scored = scorer.score_exchanges(
        [prompts[i] for i, _ in flat],
        [c.text for _, c in flat],
        content_ids=[c.token_ids if shared.get(c.source) else None for _, c in flat],
        batch_size=batch_size,
    ).scores
    result: list[list[CandidateScore]] = [[] for _ in candidates]
    for k, ((i, _), mean, std) in enumerate(zip(flat, scored.mean, scored.std, strict=True)):
        result[i].append(CandidateScore(reward=mean, std=std, members=scored.per_text(k)))
    return result


@dataclass(frozen=True)
class PairUncertainty:
    """What an ensemble says about one pair: the mean score difference r(a) − r(b), its
    spread over members (std of r_k(a) − r_k(b): members' shared offsets cancel, unlike
    √(s_a² + s_b²)), and the share of members that order the pair against the majority."""

    delta: float
    std: float
    disagreement: float

    @property
    def probability(self) -> float:
        return preference_probability(self.delta, 0.0, self.std)


def pair_uncertainty(a: CandidateScore, b: CandidateScore) -> PairUncertainty:
    """From per-member scores (one member or none: no spread, no disagreement)."""
    if len(a.members) < 2 or len(a.members) != len(b.members):
        return PairUncertainty(a.reward - b.reward, 0.0, 0.0)
    diffs = [x - y for x, y in zip(a.members, b.members, strict=True)]
    mean, std = mean_std(diffs)
    above = sum(1 for d in diffs if d > 0)
    below = sum(1 for d in diffs if d < 0)
    return PairUncertainty(mean, std, min(above, below) / len(diffs))


def preference_probability(reward_a: float, reward_b: float, pair_std: float = 0.0) -> float:
    """P(a preferred to b) under Bradley–Terry, σ(r_a − r_b). With an ensemble, the score
    difference is treated as Gaussian with standard deviation ``pair_std`` and integrated
    out (the probit approximation σ(Δ / √(1 + π·s²/8))): disagreement pulls it toward ½."""
    delta = (reward_a - reward_b) / math.sqrt(1.0 + math.pi * pair_std**2 / 8.0)
    if delta >= 0:
        return 1.0 / (1.0 + math.exp(-delta))
    e = math.exp(delta)
    return e / (1.0 + e)
