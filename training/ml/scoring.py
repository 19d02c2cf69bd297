"""Reward scoring of texts by a reward-model artifact: one model, or an ensemble (a directory
with ``member-0 … member-(K-1)`` and ``preflab_ensemble.json``). The policy step scores its
samples through this, with the ensemble's mean or the conservative mean − λ·std."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENSEMBLE_MANIFEST = "preflab_ensemble.json"


@dataclass(frozen=True)
class EnsembleScores:
    mean: list[float]
    std: list[float]

    def conservative(self, lam: float) -> list[float]:
        return [m - lam * s for m, s in zip(self.mean, self.std, strict=True)]


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
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        manifest = path / ENSEMBLE_MANIFEST
        members = (
            [path / m for m in json.loads(manifest.read_text())["members"]]
            if manifest.exists()
            else [path]
        )
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.max_length = max_length
        self.tokenizer: Any = AutoTokenizer.from_pretrained(members[0])
        self.models: list[Any] = []
        for member in members:
            model = AutoModelForSequenceClassification.from_pretrained(member, num_labels=1)
            model.config.pad_token_id = self.tokenizer.pad_token_id
            self.models.append(model.to(self.device).eval())

    @property
    def size(self) -> int:
        return len(self.models)

    def score(self, texts: list[str], *, batch_size: int = 32) -> EnsembleScores:
        """Mean and (population) standard deviation over the members, per text."""
        from training.ml.reward import score

        per_member = [
            score(model, self.tokenizer, texts, max_length=self.max_length, batch_size=batch_size)
            for model in self.models
        ]
        mean, std = [], []
        for values in zip(*per_member, strict=True):
            m = sum(values) / len(values)
            mean.append(m)
            std.append(math.sqrt(sum((v - m) ** 2 for v in values) / len(values)))
        return EnsembleScores(mean, std)
