"""Generation service: sample candidates from a policy artifact and publish them as a new batch
of comparisons for annotators.

The slow part (loading models, sampling, reward scoring) runs before any write; then one
transaction publishes the responses, the batch and its comparisons through the annotation
app's publishing service, so a failure leaves nothing half-written. Responses are keyed by
(prompt, content hash) as imports key them: identical texts of one prompt become one response
(an identical text already stored is reused as it is), and a pair of identical responses is
never asked.

The steps, each in its own module:

- :mod:`training.generation_request` — is the request valid (before any model work);
- :func:`training.ml.generation.generate_candidates` — sampling (plain Python; transformers, or
  vLLM on a GPU host), then :mod:`training.generation_sampling` — each prompt's distinct texts
  and the side that produced them, with their reward scores;
- :mod:`training.generation_pairing` — the pairing strategies (:class:`Pairing`) and the
  figures of the pairs chosen;
- :mod:`training.generation_publish` — the batch, through
  :func:`annotation.publishing.publish_comparisons`.

With ``new_vs_previous`` the side of each response is recorded on the response
(``model_artifact_id``, ``metadata["side"]``) and, because a reused response keeps its own
tags, in the batch's ``metadata["response_sides"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django.db import transaction

from annotation.comparison_specs import content_hash
from annotation.models import Project, Prompt
from training.generation_errors import (
    ArtifactFilesMissing,
    ArtifactOfAnotherProject,
    ComparePolicyRequired,
    InvalidGeneration,
    InvalidSamplingConfig,
    NoPrompts,
    NothingToCompare,
    PromptOfAnotherProject,
    PromptsChanged,
    RewardModelRequired,
    SamplesDegenerate,
    WrongArtifactKind,
)
from training.generation_pairing import (
    NEEDS_REWARD,
    Pairing,
    pairing_stats,
    select_all_pairs,
    select_pairs,
)
from training.generation_publish import GenerationReport, Provenance, publish_generated
from training.generation_request import MAX_PAIRS_PER_PROMPT, check_generation_request
from training.generation_sampling import (
    NEW,
    PREVIOUS,
    attach_scores,
    collapse_candidates,
    compare_sampling,
)
from training.ml.config import ConfigError
from training.ml.generation import (
    SamplingConfig,
    generate_candidates,
    resolve_backend,
    score_candidates,
)
from training.models import ModelArtifact
from training.registry import artifact_dir
from training.round_gates import GateConfig, SampleHealth, failed

__all__ = [
    "MAX_PAIRS_PER_PROMPT",
    "NEEDS_REWARD",
    "ArtifactFilesMissing",
    "ArtifactOfAnotherProject",
    "ComparePolicyRequired",
    "GenerationReport",
    "InvalidGeneration",
    "InvalidSamplingConfig",
    "NoPrompts",
    "NothingToCompare",
    "Pairing",
    "PromptOfAnotherProject",
    "PromptsChanged",
    "RewardModelRequired",
    "SamplesDegenerate",
    "WrongArtifactKind",
    "check_generation_request",
    "compare_sampling",
    "content_hash",
    "generate_batch",
    "select_pairs",
]

WRITE_CHUNK_PROMPTS = 500  # prompts per publishing write


def generate_batch(
    *,
    project: Project,
    policy: ModelArtifact,
    prompts: list[Prompt],
    sampling: SamplingConfig,
    pairing: Pairing | str,
    pairs_per_prompt: int = 1,
    compare_policy: ModelArtifact | None = None,
    reward: ModelArtifact | None = None,
    round_number: int | None = None,
    batch_name: str = "",
    user: Any | None = None,
    on_written: Callable[[GenerationReport], None] | None = None,
    gates: GateConfig | None = None,
) -> GenerationReport:
    """Sample ``sampling.n`` candidates per prompt from ``policy`` (and ``compare_policy``
    for ``new_vs_previous``), pair them and publish one new batch of comparisons.

    ``on_written`` runs inside the write transaction, after the batch is written: a
    generation run marks itself succeeded there, so that the batch and the run's success
    commit together (a worker dying in between cannot leave a batch its run does not know,
    which a re-delivery would publish a second time).

    The new policy's samples are measured (:class:`SampleHealth`, in the report's stats);
    with ``gates``, degenerate samples (length collapse against the previous policy,
    repetition, no diversity, broken text) raise :class:`SamplesDegenerate` before anything
    is written.

    Raises an :class:`InvalidGeneration` subclass before any model work when the request is
    invalid, :class:`NothingToCompare` when no new pair came out, :class:`PromptsChanged`
    when a prompt was deleted meanwhile; nothing is written in any of these cases. Don't
    call it inside a transaction: the generation would hold it open.
    """
    pairing, sampling, prompts = check_generation_request(
        project=project,
        policy=policy,
        prompts=prompts,
        sampling=sampling,
        pairing=pairing,
        pairs_per_prompt=pairs_per_prompt,
        compare_policy=compare_policy,
        reward=reward,
        round_number=round_number,
        batch_name=batch_name,
    )
    try:
        backend = resolve_backend(sampling.backend)  # here: the host that will generate
    except ConfigError as exc:
        raise InvalidSamplingConfig(str(exc), extra={"fields": exc.fields}) from None

    # 1. Model work, outside any transaction.
    inputs = [p.messages for p in prompts]
    sampled = {NEW: generate_candidates(artifact_dir(policy), inputs, sampling)}
    if compare_policy is not None:
        # Same settings, another seed: independent draws.
        sampled[PREVIOUS] = generate_candidates(
            artifact_dir(compare_policy), inputs, compare_sampling(sampling)
        )
    health = SampleHealth.measure(
        [c.text for group in sampled[NEW] for c in group],
        [c.text for group in sampled.get(PREVIOUS, []) for c in group],
    )
    measured = health.as_dict()
    stopped = failed(health.results(gates)) if gates is not None else []
    if stopped:
        raise SamplesDegenerate(
            "; ".join(r.reason for r in stopped),
            extra={"gates": [r.as_dict() for r in stopped], "samples": measured},
        )
    distinct, counts = collapse_candidates(sampled)
    report = GenerationReport.sampled(pairing=pairing.value, prompts=len(prompts), counts=counts)
    if reward is not None:
        scores = score_candidates(
            artifact_dir(reward), inputs, [[d.sampled for d in group] for group in distinct]
        )
        attach_scores(distinct, scores)
    selected = select_all_pairs(
        pairing,
        distinct,
        [p.external_id for p in prompts],
        pairs_per_prompt=pairs_per_prompt,
        seed=sampling.seed,
    )
    report.prompts_without_pairs = sum(1 for pairs in selected if not pairs)
    report.stats = pairing_stats(pairing, distinct, selected, policy, compare_policy, reward) | {
        "samples": measured
    }
    if report.prompts_without_pairs == len(prompts):
        raise NothingToCompare(
            "No prompt has two different candidates to compare.", extra=report.as_dict()
        )

    # 2. One transaction publishes it all.
    metadata = {
        "pairing": pairing.value,
        "pairs_per_prompt": pairs_per_prompt,
        "policy_artifact_id": policy.id,
        "compare_artifact_id": compare_policy.id if compare_policy else None,
        "reward_artifact_id": reward.id if reward else None,
        "round_number": round_number,
        "sampling": asdict(sampling),
        "compare_seed": compare_sampling(sampling).seed if compare_policy else None,
        "backend": backend,
        "prompt_count": len(prompts),
    }
    with transaction.atomic():
        publish_generated(
            project=project,
            prompts=prompts,
            distinct=distinct,
            selected=selected,
            report=report,
            provenance=Provenance(
                policy=policy,
                compare_policy=compare_policy,
                reward=reward,
                round_number=round_number,
                sampling=asdict(sampling),
                previous_sampling=asdict(compare_sampling(sampling)),
            ),
            name=batch_name or f"Generation: {policy.name} ({pairing.value})"[:200],
            metadata=metadata,
            user=user,
            chunk_prompts=WRITE_CHUNK_PROMPTS,
        )
        if on_written is not None:
            on_written(report)
    return report
