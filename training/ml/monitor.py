"""Monitors: functions of the sampled responses' texts that training logs every step without
training on them (weight 0), e.g. the gold reward of the synthetic task in benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Monitor:
    name: str
    score: Callable[[list[str]], list[float]]

    def mean(self, texts: list[str]) -> float:
        values = self.score(texts)
        return sum(values) / len(values) if values else 0.0
