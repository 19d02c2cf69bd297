"""Publishing generated candidates: the selected pairs of each prompt's distinct candidates
become a new batch of comparisons through the annotation app's one publishing service
(:func:`annotation.publishing.publish_comparisons`, the import's too). Each response records
where it came from: ``source: generated``, the artifact that sampled it, the round, and in its
metadata the side, sampling settings, whether it finished, its copies and reward score."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from annotation.comparison_specs import GENERATED, PromptComparisons, ResponseSpec
from annotation.models import BatchSource, Project, Prompt
from annotation.publishing import PromptsGone, publish_comparisons, record_batch_metadata
from training.generation_errors import NothingToCompare, PromptsChanged
from training.generation_sampling import BOTH, NEW, PREVIOUS, DistinctCandidate, SampleCounts
from training.models import ModelArtifact


@dataclass
class GenerationReport:
    batch_id: int
    pairing: str
    prompts: int = 0
    candidates: int = 0  # sampled, both policies together
    responses_created: int = 0
    responses_existing: int = 0  # an identical text of the prompt was already stored
    duplicates_skipped: int = 0  # identical to another candidate of the same prompt
    empty_skipped: int = 0  # nothing left after stripping: never shown to annotators
    unfinished: int = 0  # cut at max_new_tokens
    comparisons_created: int = 0
    comparisons_existing: int = 0  # the same pair is already in another batch
    prompts_without_pairs: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def sampled(cls, *, pairing: str, prompts: int, counts: SampleCounts) -> GenerationReport:
        """The report before anything is written: what was sampled."""
        return cls(batch_id=0, pairing=pairing, prompts=prompts, **asdict(counts))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Provenance:
    """Who generated the candidates, for the responses' columns and metadata."""

    policy: ModelArtifact
    compare_policy: ModelArtifact | None
    reward: ModelArtifact | None
    round_number: int | None
    sampling: dict[str, Any]
    previous_sampling: dict[str, Any]

    def response(self, candidate: DistinctCandidate) -> ResponseSpec:
        metadata: dict[str, Any] = {
            "side": candidate.side,
            "sampling": self.previous_sampling if candidate.side == PREVIOUS else self.sampling,
            "finished": candidate.finished,
            "num_tokens": candidate.num_tokens,
            "copies": candidate.copies,
        }
        if candidate.side == BOTH and self.compare_policy is not None:
            metadata["also_generated_by"] = self.compare_policy.id
        if candidate.score is not None and self.reward is not None:
            metadata |= {
                "reward": candidate.score.reward,
                "reward_std": candidate.score.std,
                "reward_artifact_id": self.reward.id,
            }
        artifact = self.compare_policy if candidate.side == PREVIOUS else self.policy
        assert artifact is not None
        return ResponseSpec(
            candidate.text,
            metadata,
            source=GENERATED,
            model_artifact_id=artifact.id,
            round_number=self.round_number,
        )


def publish_generated(
    *,
    project: Project,
    prompts: list[Prompt],
    distinct: list[list[DistinctCandidate]],
    selected: list[list[tuple[int, int]]],
    report: GenerationReport,
    provenance: Provenance,
    name: str,
    metadata: dict[str, Any],
    user: Any | None,
    chunk_prompts: int,
) -> None:
    """Publish the selected pairs as one new batch, ``chunk_prompts`` prompts per write;
    fills ``report`` with what was written. Runs in the caller's transaction: raises
    :class:`PromptsChanged` when a prompt was deleted meanwhile and :class:`NothingToCompare`
    when every pair already exists, and the caller's transaction rolls back with either."""

    def items(start: int) -> list[PromptComparisons]:
        return [
            PromptComparisons(
                external_id=prompt.external_id,
                messages=prompt.messages,
                metadata={},
                responses=[provenance.response(d) for d in group],
                pairs=[(i, j, "") for i, j in pairs],
                prompt_id=prompt.pk,
            )
            for prompt, group, pairs in zip(
                prompts[start : start + chunk_prompts],
                distinct[start : start + chunk_prompts],
                selected[start : start + chunk_prompts],
                strict=True,
            )
        ]

    def chunks() -> Iterator[list[PromptComparisons]]:
        for start in range(0, len(prompts), chunk_prompts):
            yield items(start)

    try:
        published = publish_comparisons(
            project=project,
            source=BatchSource.GENERATION,
            name=name,
            chunks=chunks(),
            created_by=user,
            metadata=metadata,
            keep_response_ids=True,
        )
    except PromptsGone as exc:
        raise PromptsChanged(
            f"{exc.count} prompt(s) were deleted during generation; nothing was written.",
            extra=exc.extra,
        ) from None
    report.batch_id = published.batch.id
    report.responses_created = published.responses_created
    report.responses_existing = published.responses_existing
    report.comparisons_created = published.comparisons_created
    report.comparisons_existing = published.comparisons_existing
    if published.comparisons_created == 0:
        raise NothingToCompare(
            "Every selected pair is already in another batch; nothing was written.",
            extra=report.as_dict() | {"batch_id": None},
        )
    extra: dict[str, Any] = {}
    if any(d.side != NEW for group in distinct for d in group):
        ids = published.response_ids
        extra["response_sides"] = {
            side: sorted(
                ids[(prompt.pk, d.content_hash)]
                for prompt, group in zip(prompts, distinct, strict=True)
                for d in group
                if d.side == side
            )
            for side in (NEW, PREVIOUS, BOTH)
        }
    record_batch_metadata(batch=published.batch, metadata=extra | {"report": report.as_dict()})
