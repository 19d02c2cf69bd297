"""Generation service: sample candidates from a policy artifact and publish them as a new batch
of comparisons for annotators.

The slow part (loading models, sampling, reward scoring) runs before any write; then one
transaction writes the responses, the batch and its comparisons, so a failure leaves nothing
half-written. Responses are keyed by (prompt, content hash) as imports key them: identical
texts of one prompt become one response (an identical text already stored is reused as it
is), and a pair of identical responses is never asked.

Pairing strategies (:class:`Pairing`):

- ``new_vs_previous`` — each comparison is one candidate of the new policy against one of
  ``compare_policy`` sampled the same way (another seed, so the two are independent
  draws): the judgments give a human-measured win rate. A text both policies produced is a
  tie, never asked (``stats["identical_across_policies"]`` counts them). The side of each
  response is recorded on the response (``model_artifact_id``, ``metadata["side"]``) and,
  because a reused response keeps its own tags, in the batch's
  ``metadata["response_sides"]``.
- ``best_vs_worst`` — the reward model's highest- against its lowest-scored candidate
  (then 2nd best against 2nd worst, … up to ``pairs_per_prompt``).
- ``random`` — ``pairs_per_prompt`` distinct random pairs (seeded).
- ``uncertain`` — active selection: the ``pairs_per_prompt`` pairs whose Bradley–Terry
  preference σ(r_a − r_b) is closest to ½, with an ensemble's spread of the members'
  score *differences* integrated out and their sign disagreement breaking ties
  (:func:`training.ml.generation.pair_uncertainty`).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from django.db import transaction

from annotation.import_records import PromptRecord, ResponseSpec, canonical_pairs, content_hash
from annotation.import_sql import lock_project_imports, supports_fast_path
from annotation.importing import ImportOptions, pair_indices
from annotation.importing import Pairing as ImportPairing
from annotation.models import (
    Batch,
    BatchSource,
    Comparison,
    Project,
    Prompt,
    Response,
    ResponseSource,
)
from preflab.errors import ConflictError, InvalidInputError
from training.ml.config import ConfigError
from training.ml.generation import (
    Candidate,
    CandidateScore,
    SamplingConfig,
    generate_candidates,
    pair_uncertainty,
    parse_sampling_config,
    resolve_backend,
    score_candidates,
)
from training.models import ArtifactKind, ModelArtifact
from training.registry import artifact_dir
from training.round_gates import GateConfig, SampleHealth, failed

MAX_PAIRS_PER_PROMPT = 100
COMPARE_SEED_OFFSET = 1_000_003
WRITE_CHUNK_PROMPTS = 500
NEW, PREVIOUS, BOTH = "new", "previous", "both"


class Pairing(StrEnum):
    """How a prompt's generated candidates become comparisons."""

    NEW_VS_PREVIOUS = "new_vs_previous"
    BEST_VS_WORST = "best_vs_worst"
    RANDOM = "random"
    UNCERTAIN = "uncertain"


NEEDS_REWARD = frozenset({Pairing.BEST_VS_WORST, Pairing.UNCERTAIN})


# --- errors -----------------------------------------------------------------------------------


class InvalidGeneration(InvalidInputError):
    """A generation request that cannot run; ``extra["fields"]`` names what is wrong."""

    code = "invalid_generation"

    def __init__(self, message: str, *, field_name: str = "", extra: dict[str, Any] | None = None):
        fields = {field_name: message} if field_name else {}
        super().__init__(message, extra={"fields": fields} | (extra or {}))


class InvalidSamplingConfig(InvalidGeneration):
    code = "invalid_config"


class NoPrompts(InvalidGeneration):
    code = "no_prompts"


class PromptOfAnotherProject(InvalidGeneration):
    code = "prompt_of_another_project"


class RewardModelRequired(InvalidGeneration):
    code = "reward_model_required"


class ComparePolicyRequired(InvalidGeneration):
    code = "compare_policy_required"


class WrongArtifactKind(InvalidGeneration):
    code = "wrong_artifact_kind"


class ArtifactOfAnotherProject(InvalidGeneration):
    code = "artifact_of_another_project"


class ArtifactFilesMissing(InvalidGeneration):
    code = "artifact_files_missing"


class SamplesDegenerate(InvalidGeneration):
    """The new policy's samples failed a sample gate; ``extra["gates"]`` says which."""

    code = "samples_degenerate"


class NothingToCompare(InvalidGeneration):
    """Every prompt's candidates were identical (or every pair already exists)."""

    code = "nothing_to_compare"


class PromptsChanged(ConflictError):
    """A prompt was deleted while its candidates were being generated."""

    code = "prompts_changed"


# --- pair selection (pure) ----------------------------------------------------------------------


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
        options = ImportOptions(
            pairing=ImportPairing.RANDOM_PAIRS, pairs_per_prompt=pairs_per_prompt, seed=seed
        )
        return pair_indices(n, options, key)
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


# --- the service --------------------------------------------------------------------------------


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Distinct:
    """One distinct text among a prompt's candidates."""

    text: str
    content_hash: int
    side: str
    finished: bool
    num_tokens: int
    sampled: Candidate  # the first sample of this text (its token ids are scored)
    copies: int = 1
    score: CandidateScore | None = None


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
    for ``new_vs_previous``), pair them and write one new batch of comparisons.

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
        # Same settings, another seed: independent draws (one seed for both policies would
        # correlate similar policies' samples into identical texts, never asked).
        sampled[PREVIOUS] = generate_candidates(
            artifact_dir(compare_policy), inputs, compare_sampling(sampling)
        )
    report = GenerationReport(batch_id=0, pairing=pairing.value, prompts=len(prompts))
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
    distinct = _collapse(sampled, report)
    if reward is not None:
        scores = score_candidates(
            artifact_dir(reward), inputs, [[d.sampled for d in group] for group in distinct]
        )
        for group, group_scores in zip(distinct, scores, strict=True):
            for candidate, score in zip(group, group_scores, strict=True):
                candidate.score = score
    selected = [
        select_pairs(
            pairing,
            [d.score.reward if d.score else None for d in group],
            pairs_per_prompt=pairs_per_prompt,
            members=[d.score.members if d.score else () for d in group],
            sides=[d.side for d in group],
            seed=sampling.seed,
            key=prompt.external_id,
        )
        for prompt, group in zip(prompts, distinct, strict=True)
    ]
    report.prompts_without_pairs = sum(1 for pairs in selected if not pairs)
    report.stats = _stats(pairing, distinct, selected, policy, compare_policy, reward) | {
        "samples": measured
    }
    if report.prompts_without_pairs == len(prompts):
        raise NothingToCompare(
            "No prompt has two different candidates to compare.", extra=report.as_dict()
        )

    # 2. One transaction writes it all.
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
    name = batch_name or f"Generation: {policy.name} ({pairing.value})"[:200]
    with transaction.atomic():
        _write(
            project=project,
            prompts=prompts,
            distinct=distinct,
            selected=selected,
            report=report,
            batch_fields={"name": name, "created_by": user, "metadata": metadata},
            response_fields={
                "policy": policy,
                "compare_policy": compare_policy,
                "reward": reward,
                "round_number": round_number,
                "sampling": asdict(sampling),
                "previous_sampling": asdict(compare_sampling(sampling)),
            },
        )
        if on_written is not None:
            on_written(report)
    return report


def compare_sampling(sampling: SamplingConfig) -> SamplingConfig:
    """The previous policy's sampling for ``new_vs_previous``: the same but for the seed."""
    return replace(sampling, seed=(sampling.seed + COMPARE_SEED_OFFSET) % 2**32)


def check_generation_request(
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
) -> tuple[Pairing, SamplingConfig, list[Prompt]]:
    """Validate a generation request without doing any model work (a run's API calls this
    when the run is queued; :func:`generate_batch` again before it generates). Returns the
    pairing, the re-validated sampling config and the prompts without repeats; raises an
    :class:`InvalidGeneration` subclass naming the bad field. Whether the sampling backend
    is installed is checked only where the generation runs."""
    try:
        pairing = Pairing(pairing)
    except ValueError:
        raise InvalidGeneration(
            f"pairing must be one of {[p.value for p in Pairing]}.", field_name="pairing"
        ) from None
    try:
        sampling = parse_sampling_config(asdict(sampling))
    except ConfigError as exc:
        raise InvalidSamplingConfig(str(exc), extra={"fields": exc.fields}) from None
    if (
        not isinstance(pairs_per_prompt, int)
        or isinstance(pairs_per_prompt, bool)
        or not 1 <= pairs_per_prompt <= MAX_PAIRS_PER_PROMPT
    ):
        raise InvalidGeneration(
            f"pairs_per_prompt must be 1–{MAX_PAIRS_PER_PROMPT}.", field_name="pairs_per_prompt"
        )
    if pairing is not Pairing.NEW_VS_PREVIOUS and sampling.n < 2:
        raise InvalidGeneration(
            f"{pairing.value} pairs a policy's own candidates: sample n ≥ 2.", field_name="n"
        )
    if round_number is not None and (
        not isinstance(round_number, int) or isinstance(round_number, bool) or round_number < 0
    ):
        raise InvalidGeneration("round_number must be an integer ≥ 0.", field_name="round_number")
    if not isinstance(batch_name, str) or len(batch_name) > 200:
        raise InvalidGeneration(
            "batch_name must be a string of at most 200 characters.", field_name="batch_name"
        )
    unique = list({p.pk: p for p in prompts}.values())
    if not unique:
        raise NoPrompts("Give at least one prompt.", field_name="prompts")
    foreign = [p.pk for p in unique if p.project_id != project.id]
    if foreign:
        raise PromptOfAnotherProject(
            f"{len(foreign)} prompt(s) belong to another project.",
            field_name="prompts",
            extra={"prompt_ids": foreign[:20]},
        )
    if pairing is Pairing.NEW_VS_PREVIOUS:
        if compare_policy is None:
            raise ComparePolicyRequired(
                "new_vs_previous needs compare_policy: the previous policy.",
                field_name="compare_policy",
            )
        if compare_policy.pk == policy.pk:
            raise InvalidGeneration(
                "compare_policy must differ from the policy.", field_name="compare_policy"
            )
    elif compare_policy is not None:
        raise InvalidGeneration(
            "compare_policy is used only by new_vs_previous pairing.", field_name="compare_policy"
        )
    if pairing in NEEDS_REWARD and reward is None:
        raise RewardModelRequired(
            f"{pairing.value} ranks candidates by a reward model: give reward.",
            field_name="reward",
        )
    checks = [("policy", policy, ArtifactKind.POLICY), ("reward", reward, ArtifactKind.REWARD)]
    if pairing is Pairing.NEW_VS_PREVIOUS:
        checks.append(("compare_policy", compare_policy, ArtifactKind.POLICY))
    for name, artifact, kind in checks:
        if artifact is None:
            continue
        if artifact.kind != kind:
            raise WrongArtifactKind(
                f"{name} must be a {kind} artifact, not {artifact.kind}.", field_name=name
            )
        if artifact.project_id not in (None, project.id):
            raise ArtifactOfAnotherProject(f"{name} belongs to another project.", field_name=name)
        if not artifact_dir(artifact).is_dir():
            raise ArtifactFilesMissing(
                f"{name}'s files are missing from the artifact store.", field_name=name
            )
    return pairing, sampling, unique


def _collapse(
    sampled: dict[str, list[list[Candidate]]], report: GenerationReport
) -> list[list[_Distinct]]:
    """Per prompt, its distinct non-empty texts in sampling order (new policy first)."""
    distinct: list[list[_Distinct]] = []
    count = len(next(iter(sampled.values())))
    for index in range(count):
        by_hash: dict[int, _Distinct] = {}
        for side, groups in sampled.items():
            for candidate in groups[index]:
                report.candidates += 1
                report.unfinished += not candidate.finished
                text = candidate.text.replace("\x00", "").strip()  # PostgreSQL text holds no NUL
                if not text:
                    report.empty_skipped += 1
                    continue
                sha = content_hash(text)
                seen = by_hash.get(sha)
                if seen is None:
                    by_hash[sha] = _Distinct(
                        text=text,
                        content_hash=sha,
                        side=side,
                        finished=candidate.finished,
                        num_tokens=candidate.num_tokens,
                        sampled=candidate,
                    )
                    continue
                report.duplicates_skipped += 1
                seen.copies += 1
                if seen.side != side:
                    seen.side = BOTH
        distinct.append(list(by_hash.values()))
    return distinct


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _stats(
    pairing: Pairing,
    distinct: list[list[_Distinct]],
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


def _write(
    *,
    project: Project,
    prompts: list[Prompt],
    distinct: list[list[_Distinct]],
    selected: list[list[tuple[int, int]]],
    report: GenerationReport,
    batch_fields: dict[str, Any],
    response_fields: dict[str, Any],
) -> None:
    """Responses, batch and comparisons in the caller's transaction (comparisons and
    responses carry no database FK: the prompts are checked and locked here). Queries go
    by chunks of prompts, so that no ``IN`` list outgrows SQLite's parameter limit."""
    if supports_fast_path():
        lock_project_imports(project)  # serialized with imports: same response keys
    chunks = [
        slice(start, start + WRITE_CHUNK_PROMPTS)
        for start in range(0, len(prompts), WRITE_CHUNK_PROMPTS)
    ]
    alive: set[int] = set()
    for chunk in chunks:
        alive.update(
            Prompt.objects.select_for_update()
            .filter(project=project, pk__in=[p.pk for p in prompts[chunk]])
            .values_list("pk", flat=True)
        )
    gone = [p.pk for p in prompts if p.pk not in alive]
    if gone:
        raise PromptsChanged(
            f"{len(gone)} prompt(s) were deleted during generation; nothing was written.",
            extra={"prompt_ids": gone[:20]},
        )
    batch = Batch.objects.create(project=project, source=BatchSource.GENERATION, **batch_fields)
    report.batch_id = batch.id

    # 1. Responses, keyed by (prompt, content hash); an existing row is reused as it is.
    response_ids: dict[tuple[int, int], int] = {}
    for chunk in chunks:
        wanted = {
            (prompt.pk, d.content_hash): _response(prompt.pk, d, **response_fields)
            for prompt, group in zip(prompts[chunk], distinct[chunk], strict=True)
            for d in group
        }
        stored = Response.objects.filter(prompt_id__in=[p.pk for p in prompts[chunk]])
        before = sum(1 for key in stored.values_list("prompt_id", "content_hash") if key in wanted)
        Response.objects.bulk_create(list(wanted.values()), ignore_conflicts=True, batch_size=1000)
        ids = {
            (pid, sha): rid
            for rid, pid, sha in stored.values_list("id", "prompt_id", "content_hash")
            if (pid, sha) in wanted
        }
        response_ids |= ids
        report.responses_created += len(ids) - before
        report.responses_existing += before
    if any(d.side != NEW for group in distinct for d in group):
        batch.metadata["response_sides"] = {
            side: sorted(
                response_ids[(prompt.pk, d.content_hash)]
                for prompt, group in zip(prompts, distinct, strict=True)
                for d in group
                if d.side == side
            )
            for side in (NEW, PREVIOUS, BOTH)
        }

    # 2. Comparisons in canonical order (the smaller response id is A), each pair once.
    records = (
        (
            prompt.pk,
            PromptRecord(
                line=0,
                external_id=prompt.external_id,
                messages=prompt.messages,
                responses=[ResponseSpec(d.text) for d in group],
                metadata={},
                explicit_pairs=[(i, j, "") for i, j in pairs],
            ),
            [response_ids[(prompt.pk, d.content_hash)] for d in group],
        )
        for prompt, group, pairs in zip(prompts, distinct, selected, strict=True)
    )
    comparisons = [
        Comparison(
            project=project,
            batch=batch,
            prompt_id=pid,
            response_a_id=a,
            response_b_id=b,
            target_votes=project.overlap_k,
        )
        for pid, a, b, _gold in canonical_pairs(records, lambda record: record.explicit_pairs)
    ]
    Comparison.objects.bulk_create(comparisons, ignore_conflicts=True, batch_size=1000)
    created = Comparison.objects.filter(batch=batch).count()
    report.comparisons_created = created
    report.comparisons_existing = len(comparisons) - created
    if created == 0:
        raise NothingToCompare(
            "Every selected pair is already in another batch; nothing was written.",
            extra=report.as_dict() | {"batch_id": None},
        )
    batch.comparison_count = created
    batch.metadata["report"] = report.as_dict()
    batch.save(update_fields=["comparison_count", "metadata"])


def _response(
    prompt_id: int,
    candidate: _Distinct,
    *,
    policy: ModelArtifact,
    compare_policy: ModelArtifact | None,
    reward: ModelArtifact | None,
    round_number: int | None,
    sampling: dict[str, Any],
    previous_sampling: dict[str, Any],
) -> Response:
    metadata: dict[str, Any] = {
        "side": candidate.side,
        "sampling": previous_sampling if candidate.side == PREVIOUS else sampling,
        "finished": candidate.finished,
        "num_tokens": candidate.num_tokens,
        "copies": candidate.copies,
    }
    if candidate.side == BOTH and compare_policy is not None:
        metadata["also_generated_by"] = compare_policy.id
    if candidate.score is not None and reward is not None:
        metadata |= {
            "reward": candidate.score.reward,
            "reward_std": candidate.score.std,
            "reward_artifact_id": reward.id,
        }
    artifact = compare_policy if candidate.side == PREVIOUS else policy
    assert artifact is not None
    return Response(
        prompt_id=prompt_id,
        content=candidate.text,
        content_hash=candidate.content_hash,
        source=ResponseSource.GENERATED,
        model_artifact_id=artifact.id,
        round_number=round_number,
        metadata=metadata,
    )
