"""What every training run goes through, whatever its kind: queued → running (claimed by one
worker, heart-beating, metrics streamed) → succeeded / failed / cancelled, re-queued by the
watchdog when its worker dies. The row, not the broker, is the source of truth.

A worker's claim starts an *attempt*, numbered by the run's ``attempts``. While it works, a
background thread beats the run's heart (independent of training steps, so a long model load
or a long step does not look like a dead worker). Every write of the attempt is fenced on its
number: once the watchdog re-queued the run (and another worker may have claimed it), the old
attempt can no longer beat the heart, stream metrics, or finish the run — it stops at its next
step and discards its result (:class:`StaleAttempt`)."""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import QuerySet
from django.dispatch import Signal
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

logger = logging.getLogger(__name__)


run_finished = Signal()
"""Sent with ``run=`` once a run reached a terminal status (after its fenced update).
Layers above the lifecycle (RLHF rounds) subscribe to it; the lifecycle imports none of
them."""

_RUN_TASKS: dict[str, Any] = {}


def register_run_task(kind: str, task: Any) -> None:
    """The Celery task that executes runs of ``kind`` (``training.tasks`` registers them
    when it is imported, which the app's ``ready`` does)."""
    _RUN_TASKS[kind] = task


def task_for(kind: str) -> Any:
    """The Celery task that executes runs of ``kind``."""
    task = _RUN_TASKS.get(RunKind(kind).value)
    if task is None:
        raise RuntimeError(f"no task is registered for {kind} runs (is training.tasks loaded?)")
    return task


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


def heartbeat_interval() -> float:
    """Seconds between two beats of a working run: ``PREFLAB_RUN_HEARTBEAT_INTERVAL``, or a
    third of the timeout when that is 0 (so two beats can be lost before the watchdog acts)."""
    interval = float(settings.PREFLAB_RUN_HEARTBEAT_INTERVAL)
    return interval if interval > 0 else settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT / 3


class StaleAttempt(Exception):
    """This attempt no longer owns its run (the watchdog re-queued it, another worker may have
    claimed it, or it was finished meanwhile): it must not write the run's result."""


@dataclass
class RunAttempt:
    """One worker's attempt at a run: the run as claimed and the attempt number that fences
    every write of this attempt. ``lost`` is set once a fenced write found the run owned by
    someone else; ``cancel_seen`` once the heartbeat saw a requested cancel."""

    run: TrainingRun
    number: int
    lost: threading.Event = field(default_factory=threading.Event)
    cancel_seen: threading.Event = field(default_factory=threading.Event)

    @property
    def run_id(self) -> int:
        return int(self.run.pk)

    def owned(self) -> QuerySet[TrainingRun]:
        """The run's row, as a queryset, while this attempt still owns it."""
        return TrainingRun.objects.filter(
            pk=self.run_id, attempts=self.number, status=RunStatus.RUNNING
        )

    def should_stop(self) -> bool:
        """True once the training should stop at its next step (lost, or a cancel seen)."""
        return self.lost.is_set() or self.cancel_seen.is_set()

    def describe_loss(self) -> str:
        """Why this attempt no longer owns the run, from the run's row as it is now."""
        row = TrainingRun.objects.filter(pk=self.run_id).values("status", "attempts").first()
        if row is None:
            return f"run {self.run_id} no longer exists"
        if row["attempts"] != self.number:
            return (
                f"run {self.run_id} was re-queued and is now {row['status']} "
                f"as attempt {row['attempts']}"
            )
        if row["status"] == RunStatus.QUEUED:
            return f"run {self.run_id} was re-queued by the watchdog"
        return f"run {self.run_id} is already {row['status']}"

    def lock(self) -> TrainingRun:
        """In a transaction: lock the run's row if this attempt still owns it; else mark the
        attempt lost and raise :class:`StaleAttempt` (nothing is written)."""
        row = self.owned().select_for_update().first()
        if row is None:
            self.lost.set()
            raise StaleAttempt(f"Attempt {self.number}: {self.describe_loss()}.")
        return row


def claim_run(run_id: int) -> RunAttempt | None:
    """Mark the run running on this worker and start a new attempt at it; None when there is
    nothing to do (finished, or a live worker already has it and this is a re-delivered
    message)."""
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
    return RunAttempt(run=run, number=run.attempts)


class Heartbeat:
    """While an attempt works, a background thread writes the run's ``heartbeat_at`` every
    :func:`heartbeat_interval` seconds, whatever the training does (a model load or a step
    may take longer than the watchdog's timeout). Each beat is fenced on the attempt: once
    the run is no longer this attempt's, the thread marks the attempt lost and stops (the
    training then stops at its next step). It also notes a requested cancel. Use it as a
    context manager: the thread is stopped and joined when the block ends, however it ends,
    and its database connection (Django's are per thread) is closed with it."""

    def __init__(self, attempt: RunAttempt, interval: float | None = None) -> None:
        self.attempt = attempt
        self.interval = heartbeat_interval() if interval is None else interval
        self._stop = threading.Event()
        self.thread = threading.Thread(
            target=self._loop,
            name=f"run-{attempt.run_id}-heartbeat-{attempt.number}",
            daemon=True,  # never keeps a worker process alive
        )

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop beating; returns once the thread has ended (no beat after this returns)."""
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                if not self.beat():
                    return
        finally:
            connections.close_all()  # this thread's connections only

    def beat(self) -> bool:
        """Write one heartbeat; False once the attempt no longer owns the run (stop)."""
        attempt = self.attempt
        try:
            if attempt.owned().update(heartbeat_at=timezone.now()):
                if attempt.owned().filter(cancel_requested=True).exists():
                    attempt.cancel_seen.set()
                return True
            row = TrainingRun.objects.filter(pk=attempt.run_id).values("status", "attempts").first()
            if row is None:  # deleted, or not visible to this thread's connection yet
                return True
            reason = attempt.describe_loss()
        except DatabaseError:
            logger.warning(
                "Run %s attempt %s: heartbeat not written (database error), retrying.",
                attempt.run_id,
                attempt.number,
                exc_info=True,
            )
            return True
        attempt.lost.set()
        # finished by this attempt as it ends: not worth a warning (a run failed by the
        # watchdog has its error on record)
        ended = row["attempts"] == attempt.number and row["status"] in TERMINAL_STATUSES
        log = logger.info if ended or self._stop.is_set() else logger.warning
        log(
            "Run %s attempt %s: heartbeat stopped, %s; the attempt stops at its next step.",
            attempt.run_id,
            attempt.number,
            reason,
        )
        return False


def notify_rounds(run: TrainingRun) -> None:
    """A run finished: tell the layers that wait on runs (:data:`run_finished`)."""
    run_finished.send(sender=TrainingRun, run=run)


def mark_failed(attempt: RunAttempt, exc: BaseException) -> bool:
    """Mark the run failed with ``exc``, if this attempt still owns it (True)."""
    updated = attempt.owned().update(
        status=RunStatus.FAILED,
        error=f"{type(exc).__name__}: {exc}",
        # a launched step's own log when it has one, else this worker's traceback
        log_tail=(getattr(exc, "log_tail", None) or traceback.format_exc())[-4000:],
        finished_at=timezone.now(),
    )
    if not updated:
        attempt.lost.set()
        logger.warning(
            "Run %s attempt %s failed (%s: %s) but no longer owns the run (%s): "
            "the failure is not recorded on it.",
            attempt.run_id,
            attempt.number,
            type(exc).__name__,
            exc,
            attempt.describe_loss(),
        )
        return False
    notify_rounds(attempt.run)
    return True


def finish_cancelled(attempt: RunAttempt) -> bool:
    """If a cancel was requested while the run worked, mark it cancelled (True). Raises
    :class:`StaleAttempt` when the attempt no longer owns the run."""
    run = attempt.run
    with transaction.atomic():
        row = attempt.lock()
        if not row.cancel_requested:
            return False
        attempt.owned().update(status=RunStatus.CANCELLED, finished_at=timezone.now())
        notify_rounds(run)
    run.refresh_from_db()
    return True


def finish_with_artifact(
    attempt: RunAttempt, *, source: Path, kind: ArtifactKind, metrics: dict[str, Any]
) -> TrainingRun:
    """Register the run's output (atomically, see the registry) and mark the run succeeded,
    in one transaction that holds the run's row. A stale attempt registers nothing: its
    output directory is removed and :class:`StaleAttempt` raised."""
    run = attempt.run
    try:
        with transaction.atomic():
            attempt.lock()
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
            attempt.owned().update(
                status=RunStatus.SUCCEEDED,
                output_artifact=artifact,
                metrics=metrics,
                progress=1.0,
                finished_at=timezone.now(),
            )
            notify_rounds(run)
    except StaleAttempt:
        shutil.rmtree(source, ignore_errors=True)
        raise
    run.refresh_from_db()
    return run


def finish_succeeded(attempt: RunAttempt, *, metrics: dict[str, Any], **fields: Any) -> TrainingRun:
    """Mark a run that registers no artifact (a generation) succeeded. Raises
    :class:`StaleAttempt` (which rolls back the caller's transaction: a generation's batch)
    when the attempt no longer owns the run."""
    run = attempt.run
    with transaction.atomic():
        attempt.lock()
        attempt.owned().update(
            status=RunStatus.SUCCEEDED,
            metrics=metrics,
            progress=1.0,
            finished_at=timezone.now(),
            **fields,
        )
        notify_rounds(run)
    run.refresh_from_db()
    return run


class RunCallback:
    """Streams metrics into the run (buffered, written every couple of seconds and at the
    end), beats the heart, and reports a requested cancel or a lost attempt. ``callback`` is
    a transformers ``TrainerCallback`` (TRL trainers); :meth:`on_step` is the hook of our own
    PPO. Every write is fenced on the attempt: a stale attempt writes nothing and stops."""

    def __init__(self, attempt: RunAttempt, check_every_seconds: float = 2.0) -> None:
        from transformers import TrainerCallback

        self.attempt = attempt
        self.run_id = attempt.run_id
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
                if (parent.due() and parent.flush_and_check()) or attempt.should_stop():
                    control.should_training_stop = True
                if attempt.lost.is_set():
                    control.should_save = False  # the run's checkpoints are another's now

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
        return stop or self.attempt.should_stop()

    def before_checkpoint(self) -> bool:
        """Our PPO's checkpoint hook: metrics on record first; True (don't save, stop) when
        the attempt no longer owns the run."""
        self.flush_and_check()
        return self.attempt.lost.is_set()

    def flush_and_check(self) -> bool:
        """Write buffered metrics and the heartbeat; True when a cancel was requested, or
        when the attempt no longer owns the run (then nothing is written).

        The first write of an attempt replaces the rows a lost attempt left from its first
        step on: a run resumed from a checkpoint redoes the steps after it, and each step
        stays on record once."""
        if self.attempt.lost.is_set():
            self.pending = []
            return True
        try:
            with transaction.atomic():
                row = self.attempt.lock()
                if self.pending:
                    if not self.written:
                        first = min(metric.step for metric in self.pending)
                        RunMetric.objects.filter(run_id=self.run_id, step__gte=first).delete()
                        self.written = True
                    RunMetric.objects.bulk_create(self.pending)
                updates: dict[str, Any] = {"heartbeat_at": timezone.now()}
                if self.latest:
                    updates.update(metrics=self.latest, progress=self.progress)
                self.attempt.owned().update(**updates)
        except StaleAttempt as exc:
            logger.warning("Run %s: %s Training stops at this step.", self.run_id, exc)
            self.pending = []
            return True
        self.pending = []
        return bool(row.cancel_requested)


def execute(run_id: int, body: Callable[[RunAttempt], TrainingRun]) -> TrainingRun:
    """Claim the run and do its work, the heart beating meanwhile; any error fails the run
    (and is re-raised). An attempt that lost the run meanwhile (:class:`StaleAttempt`)
    leaves it to its new owner and returns the row as it is."""
    attempt = claim_run(run_id)
    if attempt is None:
        return TrainingRun.objects.get(pk=run_id)
    try:
        with Heartbeat(attempt):
            return body(attempt)
    except StaleAttempt as exc:
        logger.warning("Run %s: %s Its result is discarded.", run_id, exc)
        return TrainingRun.objects.get(pk=run_id)
    except Exception as exc:
        mark_failed(attempt, exc)
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
