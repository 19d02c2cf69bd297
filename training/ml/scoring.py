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


class RewardScorer:
    """Loads a reward artifact once and scores batches of texts."""

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

    def score_ids(
        self, input_ids: Any, attention_mask: Any, *, batch_size: int = 32
    ) -> tuple[EnsembleScores, int]:
        """Score token ids directly (the policy's own sampled ids when it shares this
        tokenizer: the reward model reads exactly the ids it was trained on, not decoded
        and re-encoded text). Rows may be left- and right-padded (pad token, mask 0);
        positions restart at each row's first token, as in training. Rows longer than
        ``max_length`` lose their leftmost tokens (the prompt side, never the response's
        end). Returns the scores and how many rows were truncated."""
        import torch

        truncated = 0
        if input_ids.shape[1] > self.max_length:
            cut = input_ids.shape[1] - self.max_length
            truncated = int(attention_mask[:, :cut].any(dim=1).sum())
            input_ids, attention_mask = input_ids[:, cut:], attention_mask[:, cut:]
        position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
        per_member: list[list[float]] = []
        with torch.no_grad():
            for model in self.models:
                values: list[float] = []
                for start in range(0, input_ids.shape[0], batch_size):
                    rows = slice(start, start + batch_size)
                    logits = model(
                        input_ids=input_ids[rows].to(self.device),
                        attention_mask=attention_mask[rows].to(self.device),
                        position_ids=position_ids[rows].to(self.device),
                    ).logits[:, 0]
                    values.extend(logits.float().cpu().tolist())
                per_member.append(values)
        return self._combine(per_member, standardize=True), truncated

    def shares_tokenizer(self, tokenizer: Any) -> bool:
        """Same vocabulary and the same special tokens: ids mean the same to both."""
        return bool(
            self.tokenizer.get_vocab() == tokenizer.get_vocab()
            and self.tokenizer.all_special_tokens == tokenizer.all_special_tokens
            and self.tokenizer.pad_token_id == tokenizer.pad_token_id
        )

    def score(
        self, texts: list[str], *, batch_size: int = 32, standardize: bool = True
    ) -> EnsembleScores:
        """Every member's scores, standardized when the ensemble's manifest holds the
        members' reference statistics (``standardize=False``: raw), with their mean and
        (population) standard deviation per text."""
        from training.ml.reward import score

        per_member = [
            score(model, self.tokenizer, texts, max_length=self.max_length, batch_size=batch_size)
            for model in self.models
        ]
        return self._combine(per_member, standardize=standardize)

    def _combine(self, per_member: list[list[float]], *, standardize: bool) -> EnsembleScores:
        if standardize and self.standardization is not None:
            per_member = self.standardization.apply(per_member)
        return EnsembleScores.of(per_member)
