"""Reward scoring of texts by a reward-model artifact: one model, or an ensemble (a directory
with ``member-0 … member-(K-1)`` and ``preflab_ensemble.json``). The policy step scores its
samples through this, with the ensemble's mean or the conservative mean − λ·std."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.ml.prompts import Prompt
from training.ml.reward_input import (
    Completion,
    fit_length,
    sampled_ids,
    training_ids,
    turn_end_ids,
)
from training.ml.tokenization import load_tokenizer

ENSEMBLE_MANIFEST = "preflab_ensemble.json"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


@dataclass(frozen=True)
class EnsembleScores:
    """Scores of a batch of texts: mean and population std over the members, and every
    member's own scores (``members[k][i]``: member k, text i; one row for a single model)."""

    mean: list[float]
    std: list[float]
    members: list[list[float]]

    @classmethod
    def of(cls, members: list[list[float]]) -> EnsembleScores:
        per_text = [mean_std(values) for values in zip(*members, strict=True)]
        return cls([m for m, _ in per_text], [s for _, s in per_text], members)

    def conservative(self, lam: float) -> list[float]:
        return [m - lam * s for m, s in zip(self.mean, self.std, strict=True)]

    def per_text(self, i: int) -> tuple[float, ...]:
        """Text i's score by each member."""
        return tuple(member[i] for member in self.members)


@dataclass(frozen=True)
class Standardization:
    """Per member: the mean and std of its scores on a reference set (the training pairs).
    Members trained from different seeds and resamples sit at different offsets and scales;
    ``apply`` centers each and brings it to the members' average scale, so their spread
    measures disagreement about texts, not about where zero is."""

    means: list[float]
    stds: list[float]

    def apply(self, members: list[list[float]]) -> list[list[float]]:
        scale = sum(self.stds) / len(self.stds)
        return [
            [(v - mu) * scale / sd if sd > 0 else v - mu for v in member]
            for member, mu, sd in zip(members, self.means, self.stds, strict=True)
        ]

    @classmethod
    def fit(cls, members: list[list[float]]) -> Standardization:
        """The statistics of each member's scores (``members[k]``: member k's scores)."""
        per_member = [mean_std(member) for member in members]
        return cls([m for m, _ in per_member], [s for _, s in per_member])


def floor_empty_responses(
    scores: list[float], responses: list[str], penalty: float
) -> tuple[list[float], int]:
    """Scores with every empty response (nothing before its stop token) put below the batch.

    No annotator ever judges an empty response (generation never publishes one), so a reward
    model has not seen one and its score for it is an extrapolation that a policy can
    exploit: collapsing to an immediate stop token. An empty response scores the lowest score
    of the batch's non-empty responses minus ``penalty`` (``-penalty`` when all are empty).
    Returns the scores and how many responses were empty."""
    empty = [not r.strip() for r in responses]
    if not any(empty):
        return list(scores), 0
    kept = [s for s, e in zip(scores, empty, strict=True) if not e]
    floor = (min(kept) if kept else 0.0) - penalty
    return [floor if e else s for s, e in zip(scores, empty, strict=True)], sum(empty)


@dataclass(frozen=True)
class Scored:
    """Scores of a batch of exchanges, and how many were cut to the maximum length."""

    scores: EnsembleScores
    truncated: int

    def combined(self, lam: float) -> list[float]:
        """The ensemble's conservative mean − λ·std, or the single model's score."""
        return self.scores.conservative(lam) if len(self.scores.members) > 1 else self.scores.mean


def pad_right(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """``input_ids`` and ``attention_mask`` tensors of rows padded on the right with
    ``pad_id``, as TRL's preference collator pads them in reward training."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.tensor([[*r, *[pad_id] * (width - len(r))] for r in rows], dtype=torch.long)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=torch.long)
    return ids, mask


def score_rows(
    model: Any, pad_id: int, rows: Sequence[Sequence[int]], *, batch_size: int = 32
) -> list[float]:
    """One sequence-classification model's score of each row of token ids (no gradients);
    the head reads each row at its last token that is not the pad token, as in training."""
    import torch

    device = next(model.parameters()).device
    values: list[float] = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            input_ids, attention_mask = pad_right(rows[start : start + batch_size], pad_id)
            logits = model(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)
            ).logits[:, 0]
            values.extend(logits.float().cpu().tolist())
    return values


class RewardScorer:
    """Loads a reward artifact once and scores exchanges as the model read them in
    training (:mod:`training.ml.reward_input`)."""

    def __init__(self, path: Path, *, device: str | None = None, max_length: int = 512) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification

        manifest_file = path / ENSEMBLE_MANIFEST
        manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
        members = [path / m for m in manifest["members"]] if manifest else [path]
        saved = manifest.get("standardization")
        self.standardization = Standardization(**saved) if saved else None
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.max_length = max_length
        self.tokenizer: Any = load_tokenizer(members[0])
        self.turn_end = turn_end_ids(self.tokenizer)
        self.models: list[Any] = []
        for member in members:
            model = AutoModelForSequenceClassification.from_pretrained(
                member, num_labels=1, dtype=torch.float32
            )  # fp32 whatever the checkpoint's dtype; PPO casts it for its bf16 modes
            model.config.pad_token_id = self.tokenizer.pad_token_id
            self.models.append(model.to(self.device).eval())

    @property
    def size(self) -> int:
        return len(self.models)

    def shares_tokenizer(self, tokenizer: Any) -> bool:
        """Same vocabulary and the same special tokens: ids mean the same to both."""
        return bool(
            self.tokenizer.get_vocab() == tokenizer.get_vocab()
            and self.tokenizer.all_special_tokens == tokenizer.all_special_tokens
            and self.tokenizer.pad_token_id == tokenizer.pad_token_id
        )

    def exchange_ids(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[Completion],
        content_ids: Sequence[Sequence[int] | None] | None = None,
    ) -> list[list[int]]:
        """The ids the reward model reads for each exchange: from the sampled ids
        (``content_ids``: a response's ids before its stop token, given only when the
        policy that sampled it shares this tokenizer), else from the text with this model's
        tokenizer and chat template."""
        rows: list[list[int]] = []
        for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
            ids = None
            sampled = content_ids[i] if content_ids is not None else None
            if sampled is not None:
                ids = sampled_ids(self.tokenizer, prompt, sampled, self.turn_end)
            rows.append(ids if ids is not None else training_ids(self.tokenizer, prompt, response))
        return rows

    def score_exchanges(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[Completion],
        *,
        content_ids: Sequence[Sequence[int] | None] | None = None,
        batch_size: int = 32,
        standardize: bool = True,
    ) -> Scored:
        """Scores of (prompt, response) exchanges (see :meth:`exchange_ids`)."""
        rows = self.exchange_ids(prompts, responses, content_ids)
        return self.score_rows(rows, batch_size=batch_size, standardize=standardize)

    def score_rows(
        self, rows: Sequence[Sequence[int]], *, batch_size: int = 32, standardize: bool = True
    ) -> Scored:
        """Every member's scores of rows of token ids, each cut to ``max_length`` from the
        left (the prompt side), standardized when the ensemble's manifest holds the members'
        reference statistics (``standardize=False``: raw), with their mean and (population)
        standard deviation per row."""
        if not rows:
            return Scored(EnsembleScores([], [], [[] for _ in self.models]), 0)
        bos = self.tokenizer.bos_token_id
        fitted = [fit_length(list(r), self.max_length, bos) for r in rows]
        kept = [ids for ids, _ in fitted]
        pad = self.tokenizer.pad_token_id
        per_member = [score_rows(m, pad, kept, batch_size=batch_size) for m in self.models]
        if standardize and self.standardization is not None:
            per_member = self.standardization.apply(per_member)
        return Scored(EnsembleScores.of(per_member), sum(cut for _, cut in fitted))
