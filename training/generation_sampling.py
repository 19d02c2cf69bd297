"""What generation sampled, made ready to pair: each prompt's distinct non-empty texts, with
the side that produced them (the new policy, the previous one, or both) and, with a reward
model, their scores. Sampling itself is :func:`training.ml.generation.generate_candidates`
(plain Python); no database here."""

from __future__ import annotations

from dataclasses import dataclass, replace

from annotation.comparison_specs import content_hash
from training.ml.generation import Candidate, CandidateScore, SamplingConfig

COMPARE_SEED_OFFSET = 1_000_003
NEW, PREVIOUS, BOTH = "new", "previous", "both"


def compare_sampling(sampling: SamplingConfig) -> SamplingConfig:
    """The previous policy's sampling for ``new_vs_previous``: the same but for the seed
    (one seed for both policies would correlate similar policies' samples into identical
    texts, never asked)."""
    return replace(sampling, seed=(sampling.seed + COMPARE_SEED_OFFSET) % 2**32)


@dataclass
class DistinctCandidate:
    """One distinct text among a prompt's candidates."""

    text: str
    content_hash: int
    side: str  # NEW, PREVIOUS, or BOTH: a text both policies produced
    finished: bool
    num_tokens: int
    sampled: Candidate  # the first sample of this text (its token ids are scored)
    copies: int = 1
    score: CandidateScore | None = None


@dataclass
class SampleCounts:
    candidates: int = 0  # sampled, both policies together
    unfinished: int = 0  # cut at max_new_tokens
    empty_skipped: int = 0  # nothing left after stripping: never shown to annotators
    duplicates_skipped: int = 0  # identical to another candidate of the same prompt


def collapse_candidates(
    sampled: dict[str, list[list[Candidate]]],
) -> tuple[list[list[DistinctCandidate]], SampleCounts]:
    """Per prompt, its distinct non-empty texts in sampling order (new policy first).
    ``sampled`` maps a side to its candidates, one list per prompt."""
    counts = SampleCounts()
    distinct: list[list[DistinctCandidate]] = []
    prompts = len(next(iter(sampled.values()))) if sampled else 0
    for index in range(prompts):
        by_hash: dict[int, DistinctCandidate] = {}
        for side, groups in sampled.items():
            for candidate in groups[index]:
                counts.candidates += 1
                counts.unfinished += not candidate.finished
                text = candidate.text.replace("\x00", "").strip()  # PostgreSQL text holds no NUL
                if not text:
                    counts.empty_skipped += 1
                    continue
                sha = content_hash(text)
                seen = by_hash.get(sha)
                if seen is None:
                    by_hash[sha] = DistinctCandidate(
                        text=text,
                        content_hash=sha,
                        side=side,
                        finished=candidate.finished,
                        num_tokens=candidate.num_tokens,
                        sampled=candidate,
                    )
                    continue
                counts.duplicates_skipped += 1
                seen.copies += 1
                if seen.side != side:
                    seen.side = BOTH
        distinct.append(list(by_hash.values()))
    return distinct, counts


def attach_scores(
    distinct: list[list[DistinctCandidate]], scores: list[list[CandidateScore]]
) -> None:
    """Give each distinct candidate its reward score (``scores`` in the same shape)."""
    for group, group_scores in zip(distinct, scores, strict=True):
        for candidate, score in zip(group, group_scores, strict=True):
            candidate.score = score
