"""Measurements of a policy against its reference: samples, their KL in nats per response
(the same per-token k1 estimate PPO shapes with, at the sampling temperature), and win rates
under a known rule. Used by benchmarks and the synthetic end-to-end checks; no Django."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training.ml.ppo import response_logprobs, split_responses
from training.ml.prompts import Prompt, encode_prompts, stop_token_ids
from training.ml.tokenization import load_tokenizer


@dataclass(frozen=True)
class Samples:
    texts: list[str]
    kl: list[float]  # per response, vs the reference (0 when no reference was given)
    finished: list[bool]


@torch.no_grad()
def sample_with_kl(
    policy: Path,
    prompts: list[Prompt],
    *,
    reference: Path | None = None,
    temperature: float = 0.7,
    max_new_tokens: int = 24,
    seed: int = 0,
    batch_size: int = 128,
) -> Samples:
    """One sampled response per prompt, with Σ_t log π(y_t) − log π_ref(y_t) per response."""
    from transformers import AutoModelForCausalLM

    tokenizer: Any = load_tokenizer(policy, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(policy).eval()
    ref = AutoModelForCausalLM.from_pretrained(reference).eval() if reference else None
    stops = stop_token_ids(tokenizer)
    torch.manual_seed(seed)
    texts: list[str] = []
    kls: list[float] = []
    finished: list[bool] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        queries = encode_prompts(tokenizer, chunk)
        output = model.generate(
            **queries,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            max_new_tokens=max_new_tokens,
            eos_token_id=stops,
            pad_token_id=tokenizer.pad_token_id,
        )
        sampled = split_responses(tokenizer, queries, output, stops)
        if ref is not None:
            q, batch, mask = sampled.query_length, sampled.batch, sampled.mask
            logp, _ = response_logprobs(model, batch, q, temperature)
            ref_logp, _ = response_logprobs(ref, batch, q, temperature)
            kls.extend(((logp - ref_logp) * mask).sum(dim=1).tolist())
        else:
            kls.extend([0.0] * len(chunk))
        texts.extend(sampled.texts)
        finished.extend(sampled.finished.tolist())
    return Samples(texts, kls, finished)


def win_rate(new: list[str], old: list[str], rule: Callable[[str], float]) -> float:
    """Share of paired samples where ``rule`` scores the new text higher (ties count ½)."""
    wins = 0.0
    for a, b in zip(new, old, strict=True):
        ra, rb = rule(a), rule(b)
        wins += 1.0 if ra > rb else 0.5 if ra == rb else 0.0
    return wins / len(new) if new else 0.0
