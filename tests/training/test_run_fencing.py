"""The run lifecycle's heartbeat thread and attempt fencing: a long step is not mistaken for a
dead worker, and an attempt whose run was re-queued (and taken by another worker) can neither
keep the run's heart beating nor finish it, register its artifact on it or stream metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from annotation.services import create_project
from training.models import (
    ArtifactKind,
    ModelArtifact,
    RLHFRound,
    RunKind,
    RunMetric,
    RunStatus,
    TrainingRun,
)
from training.registry import staging_dir
from training.run_lifecycle import (
    Heartbeat,
    RunAttempt,
    RunCallback,
    StaleAttempt,
    claim_run,
    execute,
    finish_cancelled,
    finish_succeeded,
    finish_with_artifact,
    heartbeat_interval,
    mark_failed,
    reap_stalled_runs,
    request_cancel,
)


@pytest.fixture(autouse=True)
def _artifacts(settings: Any, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"


def make_run(make_user: Any) -> TrainingRun:
    """A queued run on a registered (row-only) base model: the lifecycle needs no files."""
    project = create_project(name="fencing")
    base = ModelArtifact.objects.create(
        name="base", kind=ArtifactKind.POLICY, path="models/policy/base", size_bytes=0, sha256=""
    )
    return TrainingRun.objects.create(
        project=project,
        kind=RunKind.REWARD,
        config={},
        base_artifact=base,
        created_by=make_user("engineer"),
    )


def heartbeat_threads(run: TrainingRun) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"run-{run.pk}-heartbeat-")]


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def staged_output(name: str) -> Path:
    folder = staging_dir(name)
    (folder / "model.bin").write_bytes(name.encode())
    return folder


def heartbeat_of(run: TrainingRun) -> Any:
    return TrainingRun.objects.values_list("heartbeat_at", flat=True).get(pk=run.pk)


def expire_heartbeat(run: TrainingRun, timeout: float) -> None:
    stale = timezone.now() - timedelta(seconds=timeout + 5)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=stale)


def test_the_interval_defaults_to_a_third_of_the_timeout(settings: Any) -> None:
    settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT = 300
    settings.PREFLAB_RUN_HEARTBEAT_INTERVAL = 0
    assert heartbeat_interval() == 100
    settings.PREFLAB_RUN_HEARTBEAT_INTERVAL = 7.5
    assert heartbeat_interval() == 7.5


# The heartbeat thread needs the run's row committed: its own connection does not see the
# test's transaction. Hence transactional tests below wherever the thread must beat.


@pytest.mark.django_db(transaction=True)
def test_a_step_longer_than_the_timeout_is_not_requeued_while_it_runs(
    make_user: Any, settings: Any
) -> None:
    # Timing: the thread beats every 0.25 s and the watchdog acts after 3 s without a beat, so
    # a false failure needs the thread to miss ~11 beats in a row (2.75 s without being
    # scheduled or reaching the database, which waits at most for one short watchdog
    # transaction). Without the thread, the claim's heartbeat is 3 s old after 3 s, and the
    # watchdog re-queues the run at the first look after that: the step blocks for 6 s.
    settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT = 3
    settings.PREFLAB_RUN_HEARTBEAT_INTERVAL = 0.25
    run = make_run(make_user)
    looks: list[dict[str, list[int]]] = []

    def one_long_step(attempt: RunAttempt) -> TrainingRun:
        # no step callback, no metric flush: a model load or a long first step
        deadline = time.monotonic() + 2 * settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT
        while time.monotonic() < deadline:
            looks.append(reap_stalled_runs())  # the watchdog, looking all the time
            time.sleep(0.2)
        return finish_succeeded(attempt, metrics={"done": 1})

    done = execute(run.pk, one_long_step)
    assert len(looks) >= 10
    assert [look for look in looks if look != {"requeued": [], "failed": []}] == []
    assert done.status == RunStatus.SUCCEEDED and done.attempts == 1
    assert heartbeat_threads(run) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", ["succeeded", "failed", "cancelled", "taken over"])
def test_the_heartbeat_thread_stops_when_the_run_ends(
    make_user: Any, settings: Any, outcome: str
) -> None:
    settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT = 30
    settings.PREFLAB_RUN_HEARTBEAT_INTERVAL = 0.1
    run = make_run(make_user)
    seen: dict[str, Any] = {}

    def body(attempt: RunAttempt) -> TrainingRun:
        assert [t.is_alive() for t in heartbeat_threads(run)] == [True]
        claimed = heartbeat_of(run)
        wait_until("a beat of the thread", lambda: heartbeat_of(run) > claimed)
        if outcome == "failed":
            raise RuntimeError("out of memory")
        if outcome == "cancelled":
            request_cancel(run=TrainingRun.objects.get(pk=run.pk))
            wait_until("the thread to see the cancel", attempt.cancel_seen.is_set)
            seen["should_stop"] = attempt.should_stop()
            assert finish_cancelled(attempt)
            return attempt.run
        if outcome == "taken over":
            expire_heartbeat(run, settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT)
            assert reap_stalled_runs()["requeued"] == [run.pk]
            # the thread notices at its next beat and stops beating by itself
            wait_until("the thread to notice", attempt.lost.is_set)
            wait_until("the thread to end", lambda: heartbeat_threads(run) == [])
            seen["should_stop"] = attempt.should_stop()
            return finish_succeeded(attempt, metrics={})  # refused: StaleAttempt
        return finish_succeeded(attempt, metrics={})

    if outcome == "failed":
        with pytest.raises(RuntimeError, match="out of memory"):
            execute(run.pk, body)
    else:
        execute(run.pk, body)
    assert heartbeat_threads(run) == []  # joined before execute returned
    run.refresh_from_db()
    expected = {
        "succeeded": RunStatus.SUCCEEDED,
        "failed": RunStatus.FAILED,
        "cancelled": RunStatus.CANCELLED,
        "taken over": RunStatus.QUEUED,  # left to the re-queued attempt
    }
    assert run.status == expected[outcome]
    if outcome in ("cancelled", "taken over"):
        assert seen["should_stop"] is True
    last = heartbeat_of(run)
    time.sleep(0.5)  # five intervals: a thread still beating would have written
    assert heartbeat_of(run) == last


@pytest.mark.django_db
def test_a_stale_attempt_cannot_finish_the_run_or_write_to_it(
    make_user: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    run = make_run(make_user)
    RLHFRound.objects.create(  # waits on the run: its success advances the round
        project=run.project,
        number=1,
        status=RunStatus.RUNNING,
        step="reward",
        config={},
        base_policy=run.base_artifact,
        reward_base=run.base_artifact,
        reward_run=run,
        created_by=run.created_by,
    )
    first = claim_run(run.pk)
    assert first is not None and first.number == 1
    expire_heartbeat(run, settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT)  # the worker looks dead
    assert reap_stalled_runs()["requeued"] == [run.pk]
    with pytest.raises(StaleAttempt, match="re-queued"):  # refused while queued, too
        finish_succeeded(first, metrics={"from": 1})
    second = claim_run(run.pk)
    assert second is not None and second.number == 2
    TrainingRun.objects.filter(pk=run.pk).update(metrics={"from": 2}, progress=0.5)
    RunMetric.objects.create(run=run, step=1, values={"from": 2})
    as_attempt_2_left_it = TrainingRun.objects.filter(pk=run.pk).values().get()

    out = staged_output("stale-output")
    with django_capture_on_commit_callbacks() as stale_callbacks:
        with pytest.raises(StaleAttempt, match="as attempt 2"):
            finish_with_artifact(first, source=out, kind=ArtifactKind.REWARD, metrics={})
        with pytest.raises(StaleAttempt):
            finish_succeeded(first, metrics={"from": 1})
        with pytest.raises(StaleAttempt):
            finish_cancelled(first)
        try:
            raise RuntimeError("attempt 1 crashed")
        except RuntimeError as exc:
            assert mark_failed(first, exc) is False
        # its step callbacks write no metric and stop the training, like a cancel (checked
        # against the row: this process has not yet noticed that it lost the run)
        unaware = RunAttempt(run=first.run, number=first.number)
        callback = RunCallback(unaware, check_every_seconds=0)
        assert callback.on_step(1, 10, {"loss": 1.0}) is True
        assert callback.on_step(2, 10, {"loss": 0.5}) is True
        assert callback.before_checkpoint() is True  # PPO: leave the checkpoint unsaved
        from transformers import TrainerControl

        control = TrainerControl(should_save=True)
        callback.callback.on_step_end(None, None, control)
        assert control.should_training_stop and not control.should_save
        assert Heartbeat(RunAttempt(run=first.run, number=1)).beat() is False  # nor beats
    assert stale_callbacks == []  # no round was told to advance
    assert first.lost.is_set() and unaware.lost.is_set() and not second.lost.is_set()
    assert TrainingRun.objects.filter(pk=run.pk).values().get() == as_attempt_2_left_it
    assert list(RunMetric.objects.filter(run=run).values_list("values", flat=True)) == [{"from": 2}]
    assert not ModelArtifact.objects.filter(kind=ArtifactKind.REWARD).exists()
    assert not out.exists()  # the stale output is discarded, not left in staging
    assert not (Path(settings.ARTIFACT_ROOT) / "models" / "reward").exists()

    # the attempt that owns the run finishes it, and the waiting round is told
    assert Heartbeat(second).beat() is True
    with django_capture_on_commit_callbacks() as callbacks:
        done = finish_with_artifact(
            second, source=staged_output("output"), kind=ArtifactKind.REWARD, metrics={"a": 1}
        )
    assert len(callbacks) == 1
    assert done.status == RunStatus.SUCCEEDED and done.attempts == 2
    assert done.output_artifact is not None and done.output_artifact.kind == ArtifactKind.REWARD
    with pytest.raises(StaleAttempt, match="already succeeded"):
        finish_succeeded(second, metrics={})  # finished once


@pytest.mark.django_db
def test_execute_leaves_a_taken_over_run_to_its_new_attempt(make_user: Any, settings: Any) -> None:
    run = make_run(make_user)
    TrainingRun.objects.filter(pk=run.pk).update(max_attempts=5)  # re-queued, not failed
    second: list[RunAttempt] = []

    def body(attempt: RunAttempt) -> TrainingRun:
        expire_heartbeat(run, settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT)
        assert reap_stalled_runs()["requeued"] == [run.pk]
        taken = claim_run(run.pk)  # another worker
        assert taken is not None
        second.append(taken)
        raise RuntimeError("the failure of a stale attempt")

    with pytest.raises(RuntimeError, match="stale attempt"):
        execute(run.pk, body)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.attempts == 2 and run.error == ""
    assert run.heartbeat_at == second[0].run.heartbeat_at

    def stale_success(attempt: RunAttempt) -> TrainingRun:
        expire_heartbeat(run, settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT)
        reap_stalled_runs()
        claim_run(run.pk)
        return finish_succeeded(attempt, metrics={})

    expire_heartbeat(run, settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT)
    reap_stalled_runs()
    left = execute(run.pk, stale_success)  # attempt 3 loses the run to attempt 4
    assert left.status == RunStatus.RUNNING and left.attempts == 4
