"""Iterative RLHF rounds: human feedback → export → reward model → policy → candidates of the
new policy against the previous one → back to the annotators.

A round is a state machine on its row. ``advance_round`` does what the current step needs and
moves on while it can: collect and export run in the advancing worker; reward, policy and
generate start a training run once (the run id is recorded in the same transaction) and wait
for it. Whoever advances — the task a finished run sends, the beat task every minute, a retry
— reads the row and continues from there, so a worker dying mid-round resumes at its step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Max, Q
from django.dispatch import receiver
from django.utils import timezone

from annotation.export import create_export
from annotation.export_options import parse_export_options
from annotation.models import Judgment, Project
from preflab.errors import ConflictError, InvalidInputError
from training.generation_runs import create_generation_run
from training.models import (
    ROUND_STEPS,
    TERMINAL_STATUSES,
    ArtifactKind,
    ModelArtifact,
    RLHFRound,
    RoundDefaults,
    RoundStep,
    RunKind,
    RunStatus,
    TrainingRun,
)
from training.policy_runs import create_policy_run
from training.reward_runs import create_reward_run
from training.round_config import parse_round_config, step_run_settings
from training.round_gates import (
    GateConfig,
    GateResult,
    GateStopped,
    check,
    parse_gates,
    policy_kl_gate,
    reward_accuracy_gate,
    split_gate,
)
from training.run_inputs import project_artifact
from training.run_lifecycle import request_cancel, run_finished

RUN_FIELD = {
    RoundStep.REWARD: "reward_run",
    RoundStep.POLICY: "policy_run",
    RoundStep.GENERATE: "generation_run",
}


class RoundFailed(Exception):
    """The current step cannot succeed; the message says why."""


def _enqueue(round_id: int) -> None:
    from training.tasks import advance_round

    transaction.on_commit(lambda: advance_round.delay(round_id))


def _now() -> str:
    return timezone.now().isoformat()


def _mark(r: RLHFRound, step: str, status: str, **detail: Any) -> None:
    entry = r.steps.setdefault(step, {"status": "pending", "detail": {}})
    if status == "running" and not entry.get("started_at"):
        entry["started_at"] = _now()
    if status in ("done", "failed", "cancelled"):
        entry["finished_at"] = _now()
    entry["status"] = status
    entry["detail"] = {**entry.get("detail", {}), **detail}


def previous_round(project: Project, number: int) -> RLHFRound | None:
    return (
        RLHFRound.objects.filter(project=project, number__lt=number)
        .exclude(status__in=[RunStatus.FAILED, RunStatus.CANCELLED])
        .order_by("-number")
        .first()
    )


def next_base_policy(project: Project) -> ModelArtifact | None:
    """The policy a new round starts from: the last published round's; before any round
    published, the project's starting policy (its round defaults), else the newest policy
    the project can use (its own or a shared one); else none."""
    last = (
        RLHFRound.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .order_by("-number")
        .first()
    )
    if last is not None and last.policy_artifact is not None:
        return last.policy_artifact
    defaults = RoundDefaults.objects.filter(project=project).select_related("base_policy").first()
    if defaults is not None and defaults.base_policy is not None:
        return defaults.base_policy
    return (
        ModelArtifact.objects.filter(
            Q(project=project) | Q(project__isnull=True), kind=ArtifactKind.POLICY
        )
        .order_by("-created_at", "-id")
        .first()
    )


@transaction.atomic
def start_round(
    *, project: Project, config: Any, user: Any, base_policy_id: int | None = None
) -> RLHFRound:
    """Validate and queue the project's next round. The base policy defaults to the last
    published round's policy (the first round: the newest policy the project can use). One
    round runs at a time."""
    Project.objects.select_for_update().filter(pk=project.pk).first()  # one numbering at a time
    active = RLHFRound.objects.filter(
        project=project, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).first()
    if active is not None:
        raise ConflictError(f"Round {active.number} is still {active.status}.")
    parsed = parse_round_config(project, config)
    if base_policy_id is None:
        default = next_base_policy(project)
        base_policy_id = default.pk if default is not None else None
    base = project_artifact(
        project, base_policy_id, field="base_policy", kinds=[ArtifactKind.POLICY]
    )
    first = RLHFRound.objects.filter(project=project).order_by("number").first()
    number = (RLHFRound.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    r = RLHFRound.objects.create(
        project=project,
        number=number,
        config=parsed,
        base_policy=base,
        reward_base=first.reward_base if first is not None else base,
        steps={s: {"status": "pending", "detail": {}} for s in ROUND_STEPS},
        created_by=user,
    )
    _enqueue(r.pk)
    return r


def cancel_round(*, r: RLHFRound) -> RLHFRound:
    """Stop a round: its running training run is asked to stop; the round is cancelled now."""
    with transaction.atomic():
        r = RLHFRound.objects.select_for_update().get(pk=r.pk)
        if r.status in TERMINAL_STATUSES:
            raise ConflictError(f"Round {r.number} has already {r.status}.")
        field = RUN_FIELD.get(RoundStep(r.step))
        run: TrainingRun | None = getattr(r, field) if field else None
        if run is not None and run.status not in TERMINAL_STATUSES:
            request_cancel(run=run)
        _mark(r, r.step, "cancelled")
        r.status = RunStatus.CANCELLED
        r.cancel_requested = True
        r.finished_at = timezone.now()
        r.save()
    return r


def _refuse_if_superseded(r: RLHFRound) -> None:
    """A failed round goes on only while no later round exists."""
    if RLHFRound.objects.filter(project=r.project, number__gt=r.number).exists():
        raise ConflictError("A later round exists: start a new round instead.")


def _requeue(r: RLHFRound) -> None:
    """Queue a failed round again at its step (retry, publish anyway)."""
    r.status = RunStatus.QUEUED
    r.error = ""
    r.finished_at = None
    r.save()
    _enqueue(r.pk)


def retry_round(*, r: RLHFRound) -> RLHFRound:
    """Run a failed round's failed step again (a new run for a training step)."""
    with transaction.atomic():
        r = RLHFRound.objects.select_for_update().get(pk=r.pk)
        if r.status != RunStatus.FAILED:
            raise ConflictError(
                f"Only a failed round can be retried (round {r.number} is {r.status})."
            )
        _refuse_if_superseded(r)
        field = RUN_FIELD.get(RoundStep(r.step))
        if field:
            setattr(r, field, None)
        if r.step == RoundStep.EXPORT:
            r.dataset_export = None
        attempts = r.steps.get(r.step, {}).get("detail", {}).get("attempts", 1)
        r.steps[r.step] = {"status": "pending", "detail": {"attempts": attempts + 1}}
        _requeue(r)
    return r


def advance_round(round_id: int) -> RLHFRound:
    """Task body: do what the current step needs and move on while steps complete; return
    when the round waits on a run, finished, or another worker is advancing it."""
    while True:
        try:
            with transaction.atomic():
                r = RLHFRound.objects.select_for_update(nowait=True).get(pk=round_id)
                if r.status in TERMINAL_STATUSES or r.cancel_requested:
                    return r
                if r.status == RunStatus.QUEUED:
                    r.status = RunStatus.RUNNING
                    r.started_at = r.started_at or timezone.now()
                step = RoundStep(r.step)
                _mark(r, step, "running")
                try:
                    moved = STEP_ACTIONS[step](r)
                except RoundFailed as exc:
                    _fail(r, str(exc))
                    r.save()
                    return r
                except GateStopped as exc:
                    _stop_at_gate(r, exc)
                    r.save()
                    return r
                if moved:
                    _mark(r, step, "done")
                    r.step = ROUND_STEPS[ROUND_STEPS.index(step) + 1]
                    if r.step == RoundStep.PUBLISHED:
                        _mark(r, RoundStep.PUBLISHED, "done", batch_id=r.batch_id)
                        r.status = RunStatus.SUCCEEDED
                        r.finished_at = timezone.now()
                r.save()
                if not moved or r.status == RunStatus.SUCCEEDED:
                    return r
        except DatabaseError as exc:
            if "lock" in str(exc).lower() or "could not obtain" in str(exc).lower():
                return RLHFRound.objects.get(pk=round_id)  # another worker is advancing it
            raise


def _fail(r: RLHFRound, message: str) -> None:
    _mark(r, r.step, "failed", error=message)
    r.status = RunStatus.FAILED
    r.error = f"{RoundStep(r.step).label}: {message}"
    r.finished_at = timezone.now()


def _stop_at_gate(r: RLHFRound, exc: GateStopped) -> None:
    """The round stops at its step, which records every gate that stopped it."""
    names = ", ".join(result.gate for result in exc.results)
    _fail(r, f"stopped by gate {names}: {exc}")
    _mark(r, r.step, "failed", gates=[result.as_dict() for result in exc.results])


def round_gates(r: RLHFRound) -> GateConfig:
    """The round's gate thresholds (a round queued before gates existed: the defaults)."""
    return parse_gates(r.config.get("gates") or {})


def _overridden(r: RLHFRound, step: RoundStep) -> list[str]:
    return list(r.steps.get(step, {}).get("detail", {}).get("overridden", []))


def _gate(r: RLHFRound, step: RoundStep, *results: GateResult) -> None:
    check(results, overridden=_overridden(r, step))


def override_gate(*, r: RLHFRound, reason: str, user: Any) -> RLHFRound:
    """Let a round that a gate stopped go on ("publish anyway"): the gates that stopped its
    step are passed from now on, with the reason, who and when recorded on the step. A
    stopped generation samples again with those sample gates off (nothing was published)."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason or len(reason) > 2000:
        raise InvalidInputError(
            "A reason (1–2000 characters) is required to publish past a gate.",
            extra={"fields": {"reason": "required, at most 2000 characters"}},
        )
    with transaction.atomic():
        r = RLHFRound.objects.select_for_update().get(pk=r.pk)
        detail = r.steps.get(r.step, {}).get("detail", {})
        stopped = [g["gate"] for g in detail.get("gates", [])]
        if r.status != RunStatus.FAILED or not stopped:
            raise ConflictError(f"Round {r.number} was not stopped by a gate.")
        _refuse_if_superseded(r)
        overrides = [
            *detail.get("overrides", []),
            {"gates": stopped, "reason": reason, "by": user.get_username(), "at": _now()},
        ]
        r.steps[r.step] = {
            **r.steps[r.step],
            "status": "pending",
            "detail": {
                **{k: v for k, v in detail.items() if k not in ("gates", "error")},
                "overridden": sorted({*_overridden(r, RoundStep(r.step)), *stopped}),
                "overrides": overrides,
            },
        }
        if r.step == RoundStep.GENERATE:
            r.generation_run = None
        _requeue(r)
    return r


def _collect(r: RLHFRound) -> bool:
    previous = previous_round(r.project, r.number)
    accumulate = r.config["accumulate"]
    r.judged_after = None if accumulate or previous is None else previous.judged_before
    r.judged_before = timezone.now()
    window = Q(project=r.project, created_at__lt=r.judged_before)
    if r.judged_after is not None:
        window &= Q(created_at__gte=r.judged_after)
    count = Judgment.objects.filter(window).count()
    _mark(
        r,
        RoundStep.COLLECT,
        "running",
        judgments=count,
        judged_after=r.judged_after.isoformat() if r.judged_after else None,
        judged_before=r.judged_before.isoformat(),
        since_round=previous.number if previous is not None and not accumulate else None,
    )
    if count < r.config["min_judgments"]:
        since = f" since round {previous.number}" if previous and not accumulate else ""
        raise RoundFailed(
            f"{count} judgment(s){since}; the round needs at least {r.config['min_judgments']}."
        )
    return True


def _export(r: RLHFRound) -> bool:
    from preflab.errors import DomainError

    if r.dataset_export is not None:  # made before a gate stopped the round
        _gate(r, RoundStep.EXPORT, split_gate(r.dataset_export.test_rows, round_gates(r)))
        return True
    options = dict(r.config["export"])
    if r.judged_after is not None:
        options["judged_after"] = r.judged_after.isoformat()
    options["judged_before"] = r.judged_before.isoformat() if r.judged_before else None
    try:
        export = create_export(
            project=r.project,
            options=parse_export_options({k: v for k, v in options.items() if v is not None}),
            user=r.created_by,
        )
    except DomainError as exc:
        raise RoundFailed(exc.message) from None
    if export.train_rows == 0:
        raise RoundFailed(f"export {export.pk} has no training rows")
    r.dataset_export = export
    _mark(
        r,
        RoundStep.EXPORT,
        "running",
        export_id=export.pk,
        train_rows=export.train_rows,
        test_rows=export.test_rows,
    )
    _gate(r, RoundStep.EXPORT, split_gate(export.test_rows, round_gates(r)))
    return True


def _wait_for(
    r: RLHFRound, step: RoundStep, start: Callable[[], TrainingRun]
) -> TrainingRun | None:
    """Start the step's run once; the run when it succeeded, None while it works."""
    field = RUN_FIELD[step]
    run: TrainingRun | None = getattr(r, field)
    if run is None:
        run = start()
        setattr(r, field, run)
        _mark(r, step, "running", run_id=run.pk)
        return None
    run.refresh_from_db()
    if run.status == RunStatus.SUCCEEDED:
        return run
    if run.status == RunStatus.FAILED and run.metrics.get("gates"):  # a sample gate stopped it
        raise GateStopped([GateResult(**g) for g in run.metrics["gates"]])
    if run.status in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise RoundFailed(f"run {run.pk} {run.status}: {run.error or 'no detail'}")
    return None


def _reward(r: RLHFRound) -> bool:
    assert r.dataset_export is not None
    export = r.dataset_export
    run = _wait_for(
        r,
        RoundStep.REWARD,
        lambda: create_reward_run(
            project=r.project,
            dataset_export_id=export.pk,
            base_artifact_id=r.reward_base_id,
            **step_run_settings(r.config["reward"]),
            user=r.created_by,
        ),
    )
    if run is None:
        return False
    r.reward_artifact = run.output_artifact
    accuracy = (run.metrics.get("eval") or {}).get("accuracy")
    _mark(
        r, RoundStep.REWARD, "running", artifact_id=run.output_artifact_id, eval_accuracy=accuracy
    )
    _gate(r, RoundStep.REWARD, reward_accuracy_gate(accuracy, round_gates(r)))
    return True


def _policy(r: RLHFRound) -> bool:
    algorithm = r.config["algorithm"]
    run = _wait_for(
        r,
        RoundStep.POLICY,
        lambda: create_policy_run(
            project=r.project,
            kind=algorithm,
            base_artifact_id=r.base_policy_id,
            reward_artifact_id=r.reward_artifact_id if algorithm != RunKind.DPO else None,
            dataset_export_id=r.dataset_export_id if algorithm == RunKind.DPO else None,
            prompt_ids=r.config["prompt_ids"] or None,
            **step_run_settings(r.config["policy"]),
            user=r.created_by,
        ),
    )
    if run is None:
        return False
    r.policy_artifact = run.output_artifact
    final = run.metrics.get("final") or {}
    _mark(
        r,
        RoundStep.POLICY,
        "running",
        artifact_id=run.output_artifact_id,
        kl=final.get("kl"),
        reward=final.get("reward"),
    )
    _gate(r, RoundStep.POLICY, policy_kl_gate(final.get("kl"), round_gates(r)))
    return True


def _generate(r: RLHFRound) -> bool:
    assert r.policy_artifact is not None
    policy = r.policy_artifact
    generation = r.config["generation"]
    run = _wait_for(
        r,
        RoundStep.GENERATE,
        lambda: create_generation_run(
            project=r.project,
            base_artifact_id=policy.pk,
            compare_artifact_id=r.base_policy_id,
            reward_artifact_id=r.reward_artifact_id,
            prompt_ids=r.config["prompt_ids"] or None,
            config={
                "sampling": generation["sampling"],
                "pairing": "new_vs_previous",
                "pairs_per_prompt": generation["pairs_per_prompt"],
                "round_number": r.number,
                "batch_name": f"Round {r.number}: new vs previous policy",
                "gates": _sample_gates(r),
            },
            user=r.created_by,
        ),
    )
    if run is None:
        return False
    r.batch_id = run.output_batch_id
    _mark(
        r,
        RoundStep.GENERATE,
        "running",
        batch_id=run.output_batch_id,
        comparisons=run.metrics.get("comparisons_created"),
    )
    return True


SAMPLE_GATES = {
    "length_collapse": "min_length_ratio",
    "repetition": "max_repetition",
    "distinct_2": "min_distinct_2",
    "broken_text": "max_broken_text",
}


def _sample_gates(r: RLHFRound) -> dict[str, Any]:
    """The generation run's sample gates: the round's, with those overridden turned off."""
    gates = asdict(round_gates(r))
    for gate in _overridden(r, RoundStep.GENERATE):
        gates[SAMPLE_GATES[gate]] = 0
    return gates


STEP_ACTIONS: dict[RoundStep, Callable[[RLHFRound], bool]] = {
    RoundStep.COLLECT: _collect,
    RoundStep.EXPORT: _export,
    RoundStep.REWARD: _reward,
    RoundStep.POLICY: _policy,
    RoundStep.GENERATE: _generate,
}


@receiver(run_finished)
def advance_rounds_waiting_on(sender: Any, run: TrainingRun, **kwargs: Any) -> None:
    """A run finished: the rounds waiting on it advance (once the finishing update commits)."""
    for round_id in rounds_waiting_on(run):
        _enqueue(round_id)


def rounds_waiting_on(run: TrainingRun) -> list[int]:
    return list(
        RLHFRound.objects.filter(
            Q(reward_run=run) | Q(policy_run=run) | Q(generation_run=run),
            status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
        ).values_list("id", flat=True)
    )


def advance_active_rounds() -> list[int]:
    """Under beat: nudge every unfinished round (a lost task or worker resumes here)."""
    ids = list(
        RLHFRound.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).values_list(
            "id", flat=True
        )
    )
    for round_id in ids:
        _enqueue(round_id)
    return ids
