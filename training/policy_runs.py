"""Policy-optimization runs: PPO (ours), GRPO and RLOO (TRL) against a reward model on the
project's prompts, and DPO (TRL) on a dataset export. Same machinery as reward runs: a
validated config, a worker on the gpu queue, streamed metrics, cancel, a registered policy."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from annotation.models import Project, Prompt
from preflab.db_chunks import chunked
from training.launch.base import StepSpec
from training.ml import policy_trl
from training.ml.ppo import parse_ppo_config, train_ppo
from training.models import ArtifactKind, RunKind, TrainingRun
from training.registry import artifact_dir, staging_dir
from training.run_inputs import (
    InvalidRunConfig,
    launch_settings,
    parsed_config,
    project_artifact,
    run_prompts,
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
    run_work_dir,
)
from training.step_supervisor import is_launched, step_spec, supervise

PARSERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    RunKind.PPO: parse_ppo_config,
    RunKind.GRPO: policy_trl.parse_grpo_config,
    RunKind.RLOO: policy_trl.parse_rloo_config,
    RunKind.DPO: policy_trl.parse_dpo_config,
}


@transaction.atomic
def create_policy_run(
    *,
    project: Project,
    kind: str,
    base_artifact_id: int,
    config: Any,
    user: Any,
    reward_artifact_id: int | None = None,
    dataset_export_id: int | None = None,
    prompt_ids: Any = None,
    launcher: Any = None,
    launcher_options: Any = None,
) -> TrainingRun:
    """Validate and queue a PPO / GRPO / RLOO run (reward model + prompts) or a DPO run
    (dataset export), executed by ``launcher`` (default ``PREFLAB_DEFAULT_LAUNCHER``); the
    task starts once this commits."""
    parse = PARSERS.get(kind)
    if parse is None:
        raise InvalidRunConfig(
            f"kind must be one of {', '.join(PARSERS)}.", extra={"fields": {"kind": "unknown"}}
        )
    parsed = parsed_config(parse, config)
    base = project_artifact(
        project, base_artifact_id, field="base_artifact", kinds=[ArtifactKind.POLICY]
    )
    fields: dict[str, Any] = {}
    if kind == RunKind.DPO:
        fields["dataset_export"] = succeeded_export(project, dataset_export_id)
    else:
        fields["reward_artifact"] = project_artifact(
            project, reward_artifact_id, field="reward_artifact", kinds=[ArtifactKind.REWARD]
        )
        fields["prompt_ids"] = run_prompts(project, prompt_ids)
    fields.update(launch_settings(launcher, launcher_options, kind=kind))
    run = TrainingRun.objects.create(
        project=project,
        kind=kind,
        config=asdict(parsed),
        base_artifact=base,
        created_by=user,
        **fields,
    )
    enqueue_on_commit(run)
    return run


def execute_policy_run(run_id: int) -> TrainingRun:
    """Task body: run a policy run; after a lost worker it resumes from its last checkpoint
    (every ``checkpoint_steps``)."""
    return execute(run_id, _train)


def _prompts(run: TrainingRun) -> list[Any]:
    messages: dict[int, Any] = {}
    for chunk in chunked(run.prompt_ids):
        messages.update(Prompt.objects.filter(pk__in=chunk).values_list("id", "messages"))
    return [messages[i] for i in run.prompt_ids if i in messages]


def _train(attempt: RunAttempt) -> TrainingRun:
    run = attempt.run
    out = staging_dir(f"{run.kind}-run-{run.pk}")
    try:
        if is_launched(run):
            return supervise(attempt, _step_spec(attempt, out), kind=ArtifactKind.POLICY)
        metrics = _fit(attempt, out)
        if finish_cancelled(attempt):
            return run
        summary = {k: v for k, v in metrics.items() if k != "history"}  # steps are in RunMetric
        return finish_with_artifact(attempt, source=out, kind=ArtifactKind.POLICY, metrics=summary)
    finally:
        shutil.rmtree(out, ignore_errors=True)  # registered, it was moved away: scratch only


def _prompts_file(run: TrainingRun) -> Path:
    """The run's prompts as the JSONL the trainers read (``{"prompt": …}`` per line)."""
    prompts_file = run_work_dir(run) / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in _prompts(run)))
    return prompts_file


def _step_spec(attempt: RunAttempt, out: Path) -> StepSpec:
    """The launched step of a policy run: its policy and its data (export or prompts)."""
    run = attempt.run
    policy = artifact_dir(run.base_artifact)
    if run.kind == RunKind.DPO:
        export = run.dataset_export
        assert export is not None
        folder = Path(settings.ARTIFACT_ROOT) / export.path
        return step_spec(
            attempt,
            out=out,
            base=policy,
            train_file=folder / "train.jsonl",
            eval_file=folder / "test.jsonl" if export.test_rows else None,
        )
    assert run.reward_artifact is not None
    return step_spec(
        attempt,
        out=out,
        base=policy,
        reward=artifact_dir(run.reward_artifact),
        prompts_file=_prompts_file(run),
    )


def _fit(attempt: RunAttempt, out: Path) -> dict[str, Any]:
    """Train the run's policy into ``out``; its metrics (the per-step history included)."""
    run = attempt.run
    parse = PARSERS[run.kind]
    config = parse(run.config)
    callback = RunCallback(attempt)
    policy = artifact_dir(run.base_artifact)
    if run.kind == RunKind.DPO:
        export = run.dataset_export
        assert export is not None
        folder = Path(settings.ARTIFACT_ROOT) / export.path
        metrics = policy_trl.train_dpo(
            policy=policy,
            train_file=folder / "train.jsonl",
            eval_file=folder / "test.jsonl" if export.test_rows else None,
            out=out,
            config=config,
            callbacks=[callback.callback],
            checkpoint_dir=run_checkpoint_dir(run),
        )
    else:
        assert run.reward_artifact is not None
        reward = artifact_dir(run.reward_artifact)
        prompts = _prompts(run)
        if run.kind == RunKind.PPO:
            metrics = train_ppo(
                policy=policy,
                reward=reward,
                prompts=prompts,
                out=out,
                config=config,
                on_step=callback.on_step,
                checkpoint_dir=run_checkpoint_dir(run),
                on_checkpoint=callback.before_checkpoint,
            )
        else:
            prompts_file = run_work_dir(run) / "prompts.jsonl"
            prompts_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
            train = policy_trl.train_grpo if run.kind == RunKind.GRPO else policy_trl.train_rloo
            metrics = train(
                policy=policy,
                reward=reward,
                prompts_file=prompts_file,
                out=out,
                config=config,
                callbacks=[callback.callback],
                checkpoint_dir=run_checkpoint_dir(run),
            )
    callback.flush_and_check()
    return metrics
