"""Measurements of a policy against its reference: samples, their KL in nats per response
(the same per-token k1 estimate PPO shapes with, at the sampling temperature), and win rates
under a known rule. Used by benchmarks and the synthetic end-to-end checks; no Django."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training.ml.ppo import position_ids_of, response_logprobs
from training.ml.prompts import Prompt, render_prompt, stop_token_ids


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
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer: Any = AutoTokenizer.from_pretrained(policy)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(policy).eval()
    ref = AutoModelForCausalLM.from_pretrained(reference).eval() if reference else None
    stops = stop_token_ids(tokenizer)
    torch.manual_seed(seed)
    texts: list[str] = []
    kls: list[float] = []
    finished: list[bool] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        queries = tokenizer(
            [render_prompt(tokenizer, p) for p in chunk], return_tensors="pt", padding=True
        )
        output = model.generate(
            **queries,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            max_new_tokens=max_new_tokens,
            eos_token_id=stops,
            pad_token_id=tokenizer.pad_token_id,
        )
        q = queries["input_ids"].shape[1]
        responses = output[:, q:]
        is_stop = torch.isin(responses, torch.tensor(stops))
        done = is_stop.any(dim=1)
        first = torch.where(done, is_stop.int().argmax(dim=1), responses.shape[1] - 1)
        mask = (torch.arange(responses.shape[1]).unsqueeze(0) <= first.unsqueeze(1)).float()
        responses = torch.where(mask.bool(), responses, tokenizer.pad_token_id)
        attention = torch.cat([queries["attention_mask"], mask.long()], dim=1)
        batch = {
            "input_ids": torch.cat([queries["input_ids"], responses], dim=1),
            "attention_mask": attention,
            "position_ids": position_ids_of(attention),
        }
        if ref is not None:
            logp, _ = response_logprobs(model, batch, q, temperature)
            ref_logp, _ = response_logprobs(ref, batch, q, temperature)
            kls.extend(((logp - ref_logp) * mask).sum(dim=1).tolist())
        else:
            kls.extend([0.0] * len(chunk))
        kept = (mask.sum(dim=1) - done.float()).long().tolist()
        texts.extend(
            tokenizer.decode(row[:n], skip_special_tokens=True).strip()
            for row, n in zip(responses, kept, strict=True)
        )
        finished.extend(done.tolist())
    return Samples(texts, kls, finished)


def win_rate(new: list[str], old: list[str], rule: Callable[[str], float]) -> float:
    """Share of paired samples where ``rule`` scores the new text higher (ties count ½)."""
    wins = 0.0
    for a, b in zip(new, old, strict=True):
        ra, rb = rule(a), rule(b)
        wins += 1.0 if ra > rb else 0.5 if ra == rb else 0.0
    return wins / len(new) if new else 0.0
