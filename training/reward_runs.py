"""Reward-model runs: validated from an export and a base model, executed (or resumed from
their last checkpoint) by a worker on the gpu queue."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from annotation.models import DatasetExport, Project
from training.ml.reward import (
    RewardTrainingConfig,
    parse_config,
    train_reward_ensemble,
    train_reward_model,
)
from training.models import ArtifactKind, ModelArtifact, RunKind, TrainingRun
from training.registry import artifact_dir, staging_dir
from training.run_inputs import (
    launch_settings,
    parsed_config,
    project_artifact,
    succeeded_export,
)
from training.run_lifecycle import (
    RunAttempt,
    RunCallback,
    enqueue_on_commit,
    execute,
    finish_cancelled,
    finish_with_artifact,
    run_checkpoint_dir,
)
from training.step_supervisor import is_launched, step_spec, supervise


def check_reward_run(
    *, project: Project, dataset_export_id: int, base_artifact_id: int, config: Any
) -> tuple[RewardTrainingConfig, DatasetExport, ModelArtifact]:
    """Validate a reward-model run's inputs (raises a typed error naming what is wrong)."""
    parsed = parsed_config(parse_config, config)
    export = succeeded_export(project, dataset_export_id)
    base = project_artifact(
        project,
        base_artifact_id,
        field="base_artifact",
        kinds=(ArtifactKind.POLICY, ArtifactKind.REWARD),
    )
    return parsed, export, base


@transaction.atomic
def create_reward_run(
    *,
    project: Project,
    dataset_export_id: int,
    base_artifact_id: int,
    config: Any,
    user: Any,
    launcher: Any = None,
    launcher_options: Any = None,
) -> TrainingRun:
    """Validate and queue a reward-model run (executed by ``launcher``, default
    ``PREFLAB_DEFAULT_LAUNCHER``); the task starts once this commits."""
    parsed, export, base = check_reward_run(
        project=project,
        dataset_export_id=dataset_export_id,
        base_artifact_id=base_artifact_id,
        config=config,
    )
    launch = launch_settings(launcher, launcher_options, kind=RunKind.REWARD)
    run = TrainingRun.objects.create(
        **launch,
        project=project,
        kind=RunKind.REWARD,
        config=asdict(parsed),
        dataset_export=export,
        base_artifact=base,
        created_by=user,
    )
    enqueue_on_commit(run)
    return run


def execute_reward_run(run_id: int) -> TrainingRun:
    """Task body: run (or resume) a reward-model run; idempotent on finished runs."""
    return execute(run_id, _train)


def _train(attempt: RunAttempt) -> TrainingRun:
    run = attempt.run
    export = run.dataset_export
    assert export is not None
    folder = Path(settings.ARTIFACT_ROOT) / export.path
    checkpoints = run_checkpoint_dir(run)
    checkpoints.mkdir(parents=True, exist_ok=True)
    out = staging_dir(f"reward-run-{run.pk}")
    try:
        if is_launched(run):
            spec = step_spec(
                attempt,
                out=out,
                base=artifact_dir(run.base_artifact),
                train_file=folder / "train.jsonl",
                eval_file=folder / "test.jsonl" if export.test_rows else None,
            )
            return supervise(attempt, spec, kind=ArtifactKind.REWARD)
        callback = RunCallback(attempt)
        config = parse_config(run.config)
        train = train_reward_ensemble if config.ensemble_size > 1 else train_reward_model
        metrics = train(
            base=artifact_dir(run.base_artifact),
            train_file=folder / "train.jsonl",
            eval_file=folder / "test.jsonl" if export.test_rows else None,
            out=out,
            config=config,
            callbacks=[callback.callback],
            **({"checkpoint_dir": checkpoints} if config.ensemble_size == 1 else {}),
        )
        if finish_cancelled(attempt):
            return run
        return finish_with_artifact(attempt, source=out, kind=ArtifactKind.REWARD, metrics=metrics)
    finally:
        shutil.rmtree(out, ignore_errors=True)  # registered, it was moved away: scratch only
