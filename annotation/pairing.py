"""Which pairs of a prompt's N candidates become comparisons. Pure: the import's pairing
strategies, and the seeded random choice that generation's ``random`` pairing shares."""

from __future__ import annotations

import itertools
import random
from enum import StrEnum


class Pairing(StrEnum):
    """How a prompt's N candidates become comparisons (the import's strategies)."""

    ALL_PAIRS = "all_pairs"
    RANDOM_PAIRS = "random_pairs"
    ADJACENT = "adjacent"


def random_pairs(n: int, k: int, *, seed: int, key: str) -> list[tuple[int, int]]:
    """``k`` distinct pairs (i < j) of ``n`` candidates, sorted; the same for the same
    ``seed`` and ``key`` (a prompt's external id)."""
    every = list(itertools.combinations(range(n), 2))
    rng = random.Random(f"{seed}:{key}")  # noqa: S311 - sampling, not security
    return sorted(rng.sample(every, min(k, len(every))))


def candidate_pairs(
    n: int, pairing: Pairing, *, pairs_per_prompt: int, seed: int, key: str
) -> list[tuple[int, int]]:
    """Index pairs of ``n`` candidates by the pairing strategy (deterministic per key)."""
    if pairing is Pairing.ADJACENT:
        return [(i, i + 1) for i in range(n - 1)]
    if pairing is Pairing.ALL_PAIRS:
        return list(itertools.combinations(range(n), 2))
    return random_pairs(n, pairs_per_prompt, seed=seed, key=key)
