"""Generation runs: a worker samples candidates from a policy artifact for the project's
prompts and publishes them as a new batch of comparisons (see :mod:`training.generation`).
Validated when queued, so a bad request is a 4xx at once rather than a failed run later."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db import transaction

from annotation.models import Project, Prompt
from preflab.db_chunks import chunked
from training import generation
from training.ml.generation import parse_sampling_config
from training.models import ArtifactKind, ModelArtifact, RunKind, TrainingRun
from training.round_gates import parse_gates
from training.run_inputs import InvalidRunConfig, parsed_config, project_artifact, run_prompts
from training.run_lifecycle import RunAttempt, enqueue_on_commit, execute, finish_succeeded

RUN_OPTIONS = (
    "sampling",
    "pairing",
    "pairs_per_prompt",
    "round_number",
    "batch_name",
    "gates",
)


def _options(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise InvalidRunConfig("config must be a JSON object.", extra={"fields": {}})
    unknown = sorted(set(config) - set(RUN_OPTIONS))
    if unknown:
        raise InvalidRunConfig(
            f"Unknown option(s): {', '.join(unknown)}.",
            extra={"fields": dict.fromkeys(unknown, "unknown option")},
        )
    sampling = parsed_config(parse_sampling_config, config.get("sampling", {}))
    gates = config.get("gates")
    return {
        "sampling": sampling,
        "pairing": config.get("pairing", generation.Pairing.RANDOM.value),
        "pairs_per_prompt": config.get("pairs_per_prompt", 1),
        "round_number": config.get("round_number"),
        "batch_name": config.get("batch_name", ""),
        "gates": None if gates is None else parsed_config(parse_gates, gates),
    }


def _artifact(
    project: Project, artifact_id: int | None, field: str, kind: str
) -> ModelArtifact | None:
    if artifact_id is None:
        return None
    return project_artifact(project, artifact_id, field=field, kinds=[kind])


@transaction.atomic
def create_generation_run(
    *,
    project: Project,
    base_artifact_id: int,
    config: Any,
    user: Any,
    reward_artifact_id: int | None = None,
    compare_artifact_id: int | None = None,
    prompt_ids: Any = None,
) -> TrainingRun:
    """Validate and queue a generation run from the policy ``base_artifact``."""
    options = _options(config)
    for name in ("pairs_per_prompt", "round_number"):
        value = options[name]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidRunConfig(
                f"{name} must be an integer.", extra={"fields": {name: "not an integer"}}
            )
    if not isinstance(options["pairing"], str) or not isinstance(options["batch_name"], str):
        raise InvalidRunConfig(
            "pairing and batch_name must be strings.",
            extra={"fields": {"pairing": "not a string", "batch_name": "not a string"}},
        )
    policy = project_artifact(
        project, base_artifact_id, field="base_artifact", kinds=[ArtifactKind.POLICY]
    )
    reward = _artifact(project, reward_artifact_id, "reward_artifact", ArtifactKind.REWARD)
    compare = _artifact(project, compare_artifact_id, "compare_artifact", ArtifactKind.POLICY)
    ids = run_prompts(project, prompt_ids)
    gates = options.pop("gates")
    generation.check_generation_request(
        project=project,
        policy=policy,
        prompts=list(Prompt.objects.filter(pk__in=ids[:1])),  # the ids were checked above
        compare_policy=compare,
        reward=reward,
        **options,
    )
    run = TrainingRun.objects.create(
        project=project,
        kind=RunKind.GENERATE,
        config=options
        | {"sampling": asdict(options["sampling"]), "gates": gates and asdict(gates)},
        base_artifact=policy,
        reward_artifact=reward,
        compare_artifact=compare,
        prompt_ids=ids,
        created_by=user,
    )
    enqueue_on_commit(run)
    return run


def execute_generation_run(run_id: int) -> TrainingRun:
    """Task body: generate and publish the batch; a re-delivered finished run is left alone."""
    return execute(run_id, _generate)


def _generate(attempt: RunAttempt) -> TrainingRun:
    run = attempt.run
    options = _options(run.config)

    def succeed(report: generation.GenerationReport) -> None:
        # In the batch's transaction: a stale attempt (StaleAttempt) rolls its batch back.
        finish_succeeded(attempt, metrics=report.as_dict(), output_batch_id=report.batch_id)

    try:
        generation.generate_batch(
            project=run.project,
            policy=run.base_artifact,
            prompts=sorted(
                (
                    p
                    for chunk in chunked(run.prompt_ids)
                    for p in Prompt.objects.filter(pk__in=chunk)
                ),
                key=lambda p: p.pk,
            ),
            compare_policy=run.compare_artifact,
            reward=run.reward_artifact,
            user=run.created_by,
            on_written=succeed,
            **options,
        )
    except generation.SamplesDegenerate as exc:
        # on record for the round that waits on this run: which sample gates stopped it
        attempt.owned().update(metrics=exc.extra)
        raise
    return run
