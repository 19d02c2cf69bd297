"""Writes of the training app: creating, running and cancelling training runs."""

from __future__ import annotations

import socket
import time
import traceback
from dataclasses import asdict
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.models import DatasetExport, ExportStatus, Project
from preflab.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from training.ml.reward import (
    ConfigError,
    RewardTrainingConfig,
    parse_config,
    train_reward_ensemble,
    train_reward_model,
)
from training.models import (
    TERMINAL_STATUSES,
    ArtifactKind,
    ModelArtifact,
    RunKind,
    RunMetric,
    RunStatus,
    TrainingRun,
)
from training.registry import artifact_dir, register_artifact, staging_dir


class InvalidRunConfig(InvalidInputError):
    code = "invalid_config"


def check_reward_run(
    *, project: Project, dataset_export_id: int, base_artifact_id: int, config: Any
) -> tuple[RewardTrainingConfig, DatasetExport, ModelArtifact]:
    """Validate a reward-model run's inputs (raises a typed error naming what is wrong)."""
    if not isinstance(config, dict):
        raise InvalidRunConfig("config must be a JSON object.", extra={"fields": {}})
    try:
        parsed = parse_config(config)
    except ConfigError as exc:
        raise InvalidRunConfig(str(exc), extra={"fields": exc.fields}) from None
    export = DatasetExport.objects.filter(pk=dataset_export_id).first()
    if export is None:
        raise NotFoundError("No such dataset export.")
    if export.project_id != project.id:
        raise ForbiddenError("That dataset export belongs to another project.")
    if export.status != ExportStatus.SUCCEEDED:
        raise ConflictError("That dataset export has not succeeded.")
    base = ModelArtifact.objects.filter(pk=base_artifact_id).first()
    if base is None or base.kind not in (ArtifactKind.POLICY, ArtifactKind.REWARD):
        raise InvalidRunConfig(
            "base_artifact must be a policy or reward model artifact.",
            extra={"fields": {"base_artifact": "not a model artifact"}},
        )
    if base.project_id not in (None, project.id):
        raise ForbiddenError("That base model belongs to another project.")
    return parsed, export, base


@transaction.atomic
def create_reward_run(
    *, project: Project, dataset_export_id: int, base_artifact_id: int, config: Any, user: Any
) -> TrainingRun:
    """Validate and queue a reward-model run; the task starts once this commits."""
    parsed, export, base = check_reward_run(
        project=project,
        dataset_export_id=dataset_export_id,
        base_artifact_id=base_artifact_id,
        config=config,
    )
    run = TrainingRun.objects.create(
        project=project,
        kind=RunKind.REWARD,
        config=asdict(parsed),
        dataset_export=export,
        base_artifact=base,
        created_by=user,
    )
    from training.tasks import train_reward_model as task

    transaction.on_commit(lambda: task.delay(run.pk))
    return run


def request_cancel(*, run: TrainingRun) -> TrainingRun:
    """Ask a run to stop: a queued run is cancelled at once, a running one at its next step."""
    if run.status in TERMINAL_STATUSES:
        raise ConflictError(f"The run has already {run.status}.")
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


def run_checkpoint_dir(run: TrainingRun) -> Path:
    return Path(settings.ARTIFACT_ROOT) / "runs" / str(run.pk) / "checkpoints"


def last_checkpoint(folder: Path) -> Path | None:
    checkpoints = sorted(
        (p for p in folder.glob("checkpoint-*") if p.is_dir()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    return checkpoints[-1] if checkpoints else None


class RunCallback:
    """A transformers ``TrainerCallback``: streams logged metrics into the run (buffered,
    written every couple of seconds and at the end), beats the heart, and stops training at
    the next check after a cancel was requested."""

    def __init__(self, run_id: int, check_every_seconds: float = 2.0) -> None:
        from transformers import TrainerCallback

        self.run_id = run_id
        self.check_every_seconds = check_every_seconds
        self.last_check = time.monotonic()
        self.pending: list[RunMetric] = []
        self.latest: dict[str, Any] = {}
        self.progress = 0.0
        parent = self

        class _Callback(TrainerCallback):
            def on_log(
                self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
            ) -> None:
                parent.log(state, logs or {})

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                now = time.monotonic()
                if now - parent.last_check >= parent.check_every_seconds:
                    parent.last_check = now
                    if parent.flush_and_check():
                        control.should_training_stop = True

            def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                parent.flush_and_check()  # the metrics up to a checkpoint are on record

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                parent.flush_and_check()

        self.callback = _Callback()

    def log(self, state: Any, logs: dict[str, Any]) -> None:
        values = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
        self.pending.append(RunMetric(run_id=self.run_id, step=state.global_step, values=values))
        self.latest = values
        if state.max_steps:
            self.progress = round(min(state.global_step / state.max_steps, 0.99), 4)

    def flush_and_check(self) -> bool:
        """Write buffered metrics and the heartbeat; True when a cancel was requested."""
        if self.pending:
            RunMetric.objects.bulk_create(self.pending)
            self.pending = []
        updates: dict[str, Any] = {"heartbeat_at": timezone.now()}
        if self.latest:
            updates.update(metrics=self.latest, progress=self.progress)
        TrainingRun.objects.filter(pk=self.run_id).update(**updates)
        return bool(
            TrainingRun.objects.filter(pk=self.run_id)
            .values_list("cancel_requested", flat=True)
            .first()
        )


def execute_reward_run(run_id: int) -> TrainingRun:
    """Task body: run (or resume) a reward-model run; idempotent on finished runs."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.status in TERMINAL_STATUSES:
            return run
        if run.status == RunStatus.RUNNING and heartbeat_fresh(run):
            return run  # another worker has it (a re-delivered message)
        run.status = RunStatus.RUNNING
        run.attempts += 1
        run.worker = socket.gethostname()
        run.started_at = run.started_at or timezone.now()
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["status", "attempts", "worker", "started_at", "heartbeat_at"])
    export = run.dataset_export
    folder = Path(settings.ARTIFACT_ROOT) / export.path
    checkpoints = run_checkpoint_dir(run)
    checkpoints.mkdir(parents=True, exist_ok=True)
    out = staging_dir(f"reward-run-{run.pk}")
    callback = RunCallback(run.pk)
    try:
        config = parse_config(run.config)
        train = train_reward_ensemble if config.ensemble_size > 1 else train_reward_model
        metrics = train(
            base=artifact_dir(run.base_artifact),
            train_file=folder / "train.jsonl",
            eval_file=folder / "test.jsonl" if export.test_rows else None,
            out=out,
            config=config,
            callbacks=[callback.callback],
            **(
                {"resume_from": last_checkpoint(checkpoints), "checkpoint_dir": checkpoints}
                if config.ensemble_size == 1
                else {}
            ),
        )
    except Exception as exc:
        TrainingRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            log_tail=traceback.format_exc()[-4000:],
            finished_at=timezone.now(),
        )
        raise
    run.refresh_from_db()
    if run.cancel_requested:
        TrainingRun.objects.filter(pk=run.pk).update(
            status=RunStatus.CANCELLED, finished_at=timezone.now()
        )
        run.refresh_from_db()
        return run
    artifact = register_artifact(
        source=out,
        name=f"reward-run-{run.pk}",
        kind=ArtifactKind.REWARD,
        parent=run.base_artifact,
        project=run.project,
        dataset_export=export,
        metrics=metrics,
        created_by=run.created_by,
    )
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED,
        output_artifact=artifact,
        metrics=metrics,
        progress=1.0,
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    return run


def heartbeat_fresh(run: TrainingRun) -> bool:
    timeout = settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT
    return (
        run.heartbeat_at is not None
        and (timezone.now() - run.heartbeat_at).total_seconds() < timeout
    )


def reap_stalled_runs() -> dict[str, list[int]]:
    """Watchdog: a running run whose worker stopped heart-beating is re-queued (it resumes
    from its last checkpoint) or failed, per its ``on_worker_lost`` and ``max_attempts``."""
    from training.tasks import train_reward_model as task

    cutoff = timezone.now() - timedelta(seconds=settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT)
    requeued: list[int] = []
    failed: list[int] = []
    with transaction.atomic():
        stalled = TrainingRun.objects.select_for_update(skip_locked=True).filter(
            status=RunStatus.RUNNING, heartbeat_at__lt=cutoff
        )
        for run in stalled:
            if run.on_worker_lost == "requeue" and run.attempts < run.max_attempts:
                run.status = RunStatus.QUEUED
                run.save(update_fields=["status"])
                transaction.on_commit(partial(task.delay, run.pk))
                requeued.append(run.pk)
            else:
                run.status = RunStatus.FAILED
                run.error = (
                    f"The worker {run.worker or '?'} stopped heart-beating "
                    f"(attempt {run.attempts} of {run.max_attempts})."
                )
                run.finished_at = timezone.now()
                run.save(update_fields=["status", "error", "finished_at"])
                failed.append(run.pk)
    return {"requeued": requeued, "failed": failed}
