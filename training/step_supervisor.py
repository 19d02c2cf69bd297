"""The worker's side of a launched training step (a run whose ``launcher`` is not
``inprocess``): write the step's spec, launch it, and while it runs tail its metrics JSONL
into the run (fenced writes, as an in-process run's :class:`RunCallback` does), keep the
heartbeat, and stop it on a cancel or a lost attempt. Its exit status decides the run:
0 with a ``done`` line registers the artifact from ``spec.out``; anything else fails the run
with the exit status and the last lines of the step's log. See :mod:`training.launch.base`."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from training.launch import base as launch
from training.launch.child import SUPERVISOR_ENV
from training.models import ArtifactKind, TrainingRun
from training.run_lifecycle import (
    RunAttempt,
    RunCallback,
    StaleAttempt,
    finish_cancelled,
    finish_with_artifact,
    run_checkpoint_dir,
    run_work_dir,
)

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
POLL_SECONDS = 0.25


class LaunchedStepFailed(Exception):
    """The launched step exited with a failure; ``log_tail`` is the end of its log."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


def is_launched(run: TrainingRun) -> bool:
    return bool(run.launcher) and run.launcher != "inprocess"


def attempt_dir(attempt: RunAttempt) -> Path:
    """This attempt's files (metrics, log, per-rank records): a lost attempt's child, still
    stopping, never writes into the next attempt's."""
    folder = run_work_dir(attempt.run) / f"attempt-{attempt.number}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _path(value: Path | None) -> str | None:
    return None if value is None else str(value)


def step_spec(
    attempt: RunAttempt,
    *,
    out: Path,
    base: Path,
    reward: Path | None = None,
    train_file: Path | None = None,
    eval_file: Path | None = None,
    prompts_file: Path | None = None,
) -> launch.StepSpec:
    """The spec of this attempt's step: the run's config and folders, and its inputs."""
    run = attempt.run
    folder = attempt_dir(attempt)
    checkpoints = run_checkpoint_dir(run)
    checkpoints.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {"rank_dir": str(folder), "launcher": run.launcher}
    if (run.launcher_options or {}).get("checksum_weights"):
        extra["checksum_weights"] = True
    return launch.StepSpec(
        kind=run.kind,
        config=dict(run.config),
        out=str(out),
        checkpoint_dir=str(checkpoints),
        metrics_file=str(folder / "metrics.jsonl"),
        log_file=str(folder / "step.log"),
        extra=extra,
        base=str(base),
        reward=_path(reward),
        train_file=_path(train_file),
        eval_file=_path(eval_file),
        prompts_file=_path(prompts_file),
    )


@dataclass
class MetricsTail:
    """Reads the lines appended to a JSONL file since the last read (a partial last line
    waits for its end)."""

    path: Path
    offset: int = 0
    partial: bytes = b""
    done: dict[str, Any] | None = field(default=None)

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s: not a JSON line, skipped: %r", self.path, line[:200])
                continue
            if isinstance(event, dict):
                events.append(event)
        return events


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the step's log ("" when there is none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(size - 64 * 1024, 0))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def lost_steps(attempt: RunAttempt) -> dict[int, dict[str, Any]]:
    """The step lines the run's earlier attempts wrote (a later attempt's line of a step
    replaces an earlier one's). A lost worker may not have put its last steps on record; the
    new attempt does, for the steps before the one its step resumes at."""
    steps: dict[int, dict[str, Any]] = {}
    folder = run_work_dir(attempt.run)
    for number in range(1, attempt.number):
        for event in MetricsTail(folder / f"attempt-{number}" / "metrics.jsonl").read():
            if isinstance(event.get("step"), int):
                steps[event["step"]] = event
    return steps


def _feed(callback: RunCallback, tail: MetricsTail, lost: dict[int, dict[str, Any]]) -> None:
    for event in tail.read():
        if event.get("event") == "done":
            metrics = event.get("metrics")
            tail.done = metrics if isinstance(metrics, dict) else {}
        elif isinstance(event.get("step"), int):
            if lost:  # the first line of this attempt: where it resumed
                for step in sorted(s for s in lost if s < event["step"]):
                    _log(callback, lost[step])
                lost.clear()
            _log(callback, event)


def _log(callback: RunCallback, event: dict[str, Any]) -> None:
    values = event.get("values")
    callback.log(
        event["step"], int(event.get("total") or 0), values if isinstance(values, dict) else {}
    )


def _record_launch(attempt: RunAttempt, description: str) -> None:
    """What was started, in the run's log (fenced on the attempt)."""
    attempt.owned().update(log_tail=f"attempt {attempt.number}: launched {description}")


def supervise(attempt: RunAttempt, spec: launch.StepSpec, *, kind: ArtifactKind) -> TrainingRun:
    """Launch ``spec`` with the run's launcher and see it through (see the module)."""
    run = attempt.run
    spec_path = spec.write(run_work_dir(run) / launch.SPEC_NAME)
    launcher = launch.get_launcher(run.launcher, run.launcher_options or {})
    env = dict(os.environ) | {SUPERVISOR_ENV: str(os.getpid())}
    grace = float(settings.PREFLAB_LAUNCH_TERMINATE_GRACE)
    callback = RunCallback(attempt)
    tail = MetricsTail(Path(spec.metrics_file))
    lost = lost_steps(attempt)
    launched = launcher.launch(spec_path, env=env)
    logger.info("Run %s attempt %s: launched %s", run.pk, attempt.number, launched.describe())
    _record_launch(attempt, launched.describe())
    stopped = False
    try:
        while (status := launched.poll()) is None:
            _feed(callback, tail, lost)
            if (callback.due() and callback.flush_and_check()) or attempt.should_stop():
                stopped = True
                break
            time.sleep(POLL_SECONDS)
    finally:
        launched.terminate(grace)  # nothing of the step outlives this call, however it ends
    status = launched.poll()
    _feed(callback, tail, lost)
    callback.flush_and_check()
    if attempt.lost.is_set():
        raise StaleAttempt(f"Attempt {attempt.number}: {attempt.describe_loss()}.")
    if finish_cancelled(attempt):
        return run
    if stopped:  # stopped for a reason that is neither a cancel nor a lost run: none exists
        raise StaleAttempt(f"Attempt {attempt.number}: stopped, {attempt.describe_loss()}.")
    if status == 0 and tail.done is not None:
        return finish_with_artifact(attempt, source=Path(spec.out), kind=kind, metrics=tail.done)
    last = log_tail(Path(spec.log_file))
    reason = "exited 0 without its done line" if status == 0 else f"exited with status {status}"
    raise LaunchedStepFailed(
        f"The {run.launcher} step ({launched.describe()}) {reason}. Last lines of its log:\n{last}",
        log_tail=last,
    )
