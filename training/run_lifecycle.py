"""What every training run goes through, whatever its kind: queued → running (claimed by one
worker, heart-beating, metrics streamed) → succeeded / failed / cancelled, re-queued by the
watchdog when its worker dies. The row, not the broker, is the source of truth."""

from __future__ import annotations

import socket
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from preflab.errors import ConflictError
from training.models import (
    TERMINAL_STATUSES,
    ArtifactKind,
    ModelArtifact,
    RunKind,
    RunMetric,
    RunStatus,
    TrainingRun,
)
from training.registry import register_artifact


def task_for(kind: str) -> Any:
    """The Celery task that executes runs of ``kind``."""
    from training import tasks

    if kind == RunKind.REWARD:
        return tasks.train_reward_model
    if kind == RunKind.GENERATE:
        return tasks.generate_candidates
    return tasks.train_policy


def enqueue_on_commit(run: TrainingRun) -> None:
    """Send the run's task once the transaction that created or re-queued it commits."""
    transaction.on_commit(partial(task_for(run.kind).delay, run.pk))


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


def run_work_dir(run: TrainingRun) -> Path:
    """Scratch space of a run (prompt files and the like), kept next to its checkpoints."""
    folder = Path(settings.ARTIFACT_ROOT) / "runs" / str(run.pk) / "work"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def heartbeat_fresh(run: TrainingRun) -> bool:
    timeout = settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT
    return (
        run.heartbeat_at is not None
        and (timezone.now() - run.heartbeat_at).total_seconds() < timeout
    )


def claim_run(run_id: int) -> TrainingRun | None:
    """Mark the run running on this worker; None when there is nothing to do (finished, or
    a live worker already has it and this is a re-delivered message)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.status in TERMINAL_STATUSES:
            return None
        if run.status == RunStatus.RUNNING and heartbeat_fresh(run):
            return None
        run.status = RunStatus.RUNNING
        run.attempts += 1
        run.worker = socket.gethostname()
        run.started_at = run.started_at or timezone.now()
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["status", "attempts", "worker", "started_at", "heartbeat_at"])
    return run


def notify_rounds(run: TrainingRun) -> None:
    """A run finished: the RLHF rounds waiting on it advance (once this commits)."""
    from training.rounds import rounds_waiting_on
    from training.tasks import advance_round

    for round_id in rounds_waiting_on(run):
        transaction.on_commit(partial(advance_round.delay, round_id))


def mark_failed(run: TrainingRun, exc: BaseException) -> None:
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED,
        error=f"{type(exc).__name__}: {exc}",
        log_tail=traceback.format_exc()[-4000:],
        finished_at=timezone.now(),
    )
    notify_rounds(run)


def finish_cancelled(run: TrainingRun) -> bool:
    """If a cancel was requested while the run worked, mark it cancelled (True)."""
    run.refresh_from_db()
    if not run.cancel_requested:
        return False
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    notify_rounds(run)
    return True


def finish_with_artifact(
    run: TrainingRun, *, source: Path, kind: ArtifactKind, metrics: dict[str, Any]
) -> TrainingRun:
    """Register the run's output (atomically, see the registry) and mark the run succeeded."""
    artifact: ModelArtifact = register_artifact(
        source=source,
        name=f"{run.kind}-run-{run.pk}",
        kind=kind,
        parent=run.base_artifact,
        project=run.project,
        dataset_export=run.dataset_export,
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
    notify_rounds(run)
    return run


def finish_succeeded(run: TrainingRun, *, metrics: dict[str, Any], **fields: Any) -> TrainingRun:
    """Mark a run that registers no artifact (a generation) succeeded."""
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED,
        metrics=metrics,
        progress=1.0,
        finished_at=timezone.now(),
        **fields,
    )
    run.refresh_from_db()
    notify_rounds(run)
    return run


class RunCallback:
    """Streams metrics into the run (buffered, written every couple of seconds and at the
    end), beats the heart, and reports a requested cancel. ``callback`` is a transformers
    ``TrainerCallback`` (TRL trainers); :meth:`on_step` is the hook of our own PPO."""

    def __init__(self, run_id: int, check_every_seconds: float = 2.0) -> None:
        from transformers import TrainerCallback

        self.run_id = run_id
        self.check_every_seconds = check_every_seconds
        self.last_check = time.monotonic()
        self.pending: list[RunMetric] = []
        self.latest: dict[str, Any] = {}
        self.progress = 0.0
        self.written = False  # nothing of this attempt is on record yet
        parent = self

        class _Callback(TrainerCallback):
            def on_log(
                self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
            ) -> None:
                parent.log(state.global_step, state.max_steps, logs or {})

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if parent.due() and parent.flush_and_check():
                    control.should_training_stop = True

            def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                parent.flush_and_check()  # the metrics up to a checkpoint are on record

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                parent.flush_and_check()

        self.callback = _Callback()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last_check < self.check_every_seconds:
            return False
        self.last_check = now
        return True

    def log(self, step: int, total: int, logs: dict[str, Any]) -> None:
        values = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
        self.pending.append(RunMetric(run_id=self.run_id, step=step, values=values))
        self.latest = values
        if total:
            self.progress = round(min(step / total, 0.99), 4)

    def on_step(self, step: int, total: int, metrics: dict[str, float]) -> bool:
        """Our PPO's step hook: log every step, write and check now and then."""
        self.log(step, total, metrics)
        stop = self.flush_and_check() if self.due() or step >= total else False
        return stop

    def flush_and_check(self) -> bool:
        """Write buffered metrics and the heartbeat; True when a cancel was requested.

        The first write of an attempt replaces the rows a lost attempt left from its first
        step on: a run resumed from a checkpoint redoes the steps after it, and each step
        stays on record once."""
        if self.pending:
            with transaction.atomic():
                if not self.written:
                    first = min(metric.step for metric in self.pending)
                    RunMetric.objects.filter(run_id=self.run_id, step__gte=first).delete()
                    self.written = True
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


def execute(run_id: int, body: Callable[[TrainingRun], TrainingRun]) -> TrainingRun:
    """Claim the run and do its work; any error fails the run (and is re-raised)."""
    run = claim_run(run_id)
    if run is None:
        return TrainingRun.objects.get(pk=run_id)
    try:
        return body(run)
    except Exception as exc:
        mark_failed(run, exc)
        raise


def reap_stalled_runs() -> dict[str, list[int]]:
    """Watchdog: a running run whose worker stopped heart-beating is re-queued (it resumes
    from its last checkpoint) or failed, per its ``on_worker_lost`` and ``max_attempts``."""
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
                enqueue_on_commit(run)
                requeued.append(run.pk)
            else:
                run.status = RunStatus.FAILED
                run.error = (
                    f"The worker {run.worker or '?'} stopped heart-beating "
                    f"(attempt {run.attempts} of {run.max_attempts})."
                )
                run.finished_at = timezone.now()
                run.save(update_fields=["status", "error", "finished_at"])
                notify_rounds(run)
                failed.append(run.pk)
    return {"requeued": requeued, "failed": failed}
