"""Pairing strategies of generation: which of a prompt's distinct candidates annotators compare
(pure), and the figures of the pairs chosen.

- ``new_vs_previous`` — each comparison is one candidate of the new policy against one of the
  previous policy: the judgments give a human-measured win rate. A text both policies
  produced is a tie, never asked.
- ``best_vs_worst`` — the reward model's highest- against its lowest-scored candidate (then
  2nd best against 2nd worst, … up to ``pairs_per_prompt``).
- ``random`` — ``pairs_per_prompt`` distinct random pairs (seeded, as the import's random
  pairing).
- ``uncertain`` — active selection: the pairs whose Bradley–Terry preference σ(r_a − r_b) is
  closest to ½, with an ensemble's spread of the members' score *differences* integrated out
  and their sign disagreement breaking ties (:func:`training.ml.generation.pair_uncertainty`).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from annotation.pairing import random_pairs
from training.generation_sampling import BOTH, NEW, PREVIOUS, DistinctCandidate
from training.ml.generation import CandidateScore, pair_uncertainty
from training.models import ModelArtifact


class Pairing(StrEnum):
    """How a prompt's generated candidates become comparisons."""

    NEW_VS_PREVIOUS = "new_vs_previous"
    BEST_VS_WORST = "best_vs_worst"
    RANDOM = "random"
    UNCERTAIN = "uncertain"


NEEDS_REWARD = frozenset({Pairing.BEST_VS_WORST, Pairing.UNCERTAIN})


def select_pairs(
    strategy: Pairing | str,
    scores: Sequence[float | None],
    *,
    pairs_per_prompt: int = 1,
    members: Sequence[Sequence[float]] | None = None,
    sides: Sequence[str] | None = None,
    seed: int = 0,
    key: str = "",
) -> list[tuple[int, int]]:
    """Index pairs among one prompt's distinct candidates (one ``scores`` entry each; the
    values matter only to the reward-based strategies).

    - ``best_vs_worst``: (best, worst), then (2nd best, 2nd worst)… up to
      ``pairs_per_prompt`` pairs of distinct ranks; on equal scores the earlier candidate
      ranks higher. Pairs are (higher-scored, lower-scored).
    - ``uncertain``: the ``pairs_per_prompt`` pairs whose preference probability is closest
      to ½ (``members``: each candidate's per-member scores; the spread of the members'
      differences pulls the probability toward ½, their sign disagreement breaks ties), as
      (higher-scored, lower-scored).
    - ``random``: ``pairs_per_prompt`` distinct pairs (i < j), the same for the same
      ``seed`` and ``key`` (the import's random pairing).
    - ``new_vs_previous``: ``sides[i]`` is ``"new"``, ``"previous"`` or ``"both"`` (a text
      both policies produced: a tie, never asked); the k-th new candidate against the k-th
      previous one, as (new, previous).
    """
    strategy = Pairing(strategy)
    n = len(scores)
    if pairs_per_prompt < 1 or n < 2:
        return []
    if strategy is Pairing.NEW_VS_PREVIOUS:
        if sides is None or len(sides) != n:
            raise ValueError("new_vs_previous needs one side per candidate")
        new = [i for i in range(n) if sides[i] == NEW]
        previous = [i for i in range(n) if sides[i] == PREVIOUS]
        return list(zip(new, previous, strict=False))[:pairs_per_prompt]
    if strategy is Pairing.RANDOM:
        return random_pairs(n, pairs_per_prompt, seed=seed, key=key)
    if any(s is None for s in scores):
        raise ValueError(f"{strategy} needs a reward score for every candidate")
    values = [float(s) for s in scores if s is not None]
    # ranks: highest score first, the earlier candidate first among equal scores
    ranked = sorted(range(n), key=lambda i: (-values[i], i))
    if strategy is Pairing.BEST_VS_WORST:
        return [(ranked[k], ranked[n - 1 - k]) for k in range(min(pairs_per_prompt, n // 2))]
    per_member = [tuple(m) for m in members] if members is not None else [()] * n
    candidates = [
        CandidateScore(reward=v, std=0.0, members=m)
        for v, m in zip(values, per_member, strict=True)
    ]
    position = {i: r for r, i in enumerate(ranked)}

    def uncertainty(pair: tuple[int, int]) -> tuple[float, float, float, int, int]:
        i, j = pair
        u = pair_uncertainty(candidates[i], candidates[j])
        return (abs(u.probability - 0.5), -u.disagreement, -u.std, position[i], position[j])

    every = [
        (i, j) if position[i] < position[j] else (j, i)
        for i, j in itertools.combinations(range(n), 2)
    ]
    return sorted(every, key=uncertainty)[:pairs_per_prompt]


def select_all_pairs(
    pairing: Pairing,
    distinct: list[list[DistinctCandidate]],
    keys: Sequence[str],
    *,
    pairs_per_prompt: int,
    seed: int,
) -> list[list[tuple[int, int]]]:
    """:func:`select_pairs` for every prompt (``keys``: the prompts' external ids)."""
    return [
        select_pairs(
            pairing,
            [d.score.reward if d.score else None for d in group],
            pairs_per_prompt=pairs_per_prompt,
            members=[d.score.members if d.score else () for d in group],
            sides=[d.side for d in group],
            seed=seed,
            key=key,
        )
        for key, group in zip(keys, distinct, strict=True)
    ]


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def pairing_stats(
    pairing: Pairing,
    distinct: list[list[DistinctCandidate]],
    selected: list[list[tuple[int, int]]],
    policy: ModelArtifact,
    compare_policy: ModelArtifact | None,
    reward: ModelArtifact | None,
) -> dict[str, Any]:
    """Figures worth a glance: per side, what was sampled; with a reward model, the scores of
    the pairs' sides as the reward model ranks them (chosen = its higher-scored side)."""
    flat = [d for group in distinct for d in group]
    stats: dict[str, Any] = {"pairs_selected": sum(len(p) for p in selected)}
    sides = {NEW: policy} | ({PREVIOUS: compare_policy} if compare_policy else {})
    per_side = {}
    for side, artifact in sides.items():
        mine = [d for d in flat if d.side in (side, BOTH)]
        per_side[side] = {
            "artifact_id": artifact.id,
            "distinct_responses": len(mine),
            "finished_rate": _mean([float(d.finished) for d in mine]),
            "mean_tokens": _mean([float(d.num_tokens) for d in mine]),
            "mean_reward": _mean([d.score.reward for d in mine if d.score]),
        }
    stats["sides"] = per_side
    if pairing is Pairing.NEW_VS_PREVIOUS:
        stats["identical_across_policies"] = sum(1 for d in flat if d.side == BOTH)
    if reward is None:
        return stats
    chosen, rejected, confidence, new_wins = [], [], [], []
    for group, pairs in zip(distinct, selected, strict=True):
        for i, j in pairs:
            a, b = group[i].score, group[j].score
            assert a is not None and b is not None
            high, low = (a, b) if a.reward >= b.reward else (b, a)
            chosen.append(high.reward)
            rejected.append(low.reward)
            confidence.append(pair_uncertainty(high, low).probability)
            if pairing is Pairing.NEW_VS_PREVIOUS:  # (i, j) is (new, previous)
                new_wins.append(1.0 if a.reward > b.reward else 0.5 if a.reward == b.reward else 0)
    stats["reward"] = {
        "artifact_id": reward.id,
        "mean_reward": _mean([d.score.reward for d in flat if d.score]),
        "mean_std": _mean([d.score.std for d in flat if d.score]),
        "mean_chosen": _mean(chosen),
        "mean_rejected": _mean(rejected),
        "mean_margin": _mean([c - r for c, r in zip(chosen, rejected, strict=True)]),
        "mean_confidence": _mean(confidence),
    }
    if pairing is Pairing.NEW_VS_PREVIOUS:
        stats["reward"]["predicted_win_rate_new"] = _mean(new_wins)
    return stats
