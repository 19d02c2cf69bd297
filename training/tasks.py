"""Celery tasks of the training app; ``training.gpu.*`` tasks are routed to the gpu queue.
Each takes a run id: the run row decides what is left to do (finished runs are left alone)."""

from __future__ import annotations

from celery import shared_task

from training.models import RunKind
from training.run_lifecycle import register_run_task


@shared_task(name="training.gpu.train_reward_model", acks_late=True)
def train_reward_model(run_id: int) -> dict[str, object]:
    """Run or resume a reward-model run."""
    from training.reward_runs import execute_reward_run

    run = execute_reward_run(run_id)
    return {"run_id": run.pk, "status": run.status}


@shared_task(name="training.gpu.train_policy", acks_late=True)
def train_policy(run_id: int) -> dict[str, object]:
    """Run a PPO / GRPO / RLOO / DPO run (PPO resumes from its last checkpoint)."""
    from training.policy_runs import execute_policy_run

    run = execute_policy_run(run_id)
    return {"run_id": run.pk, "status": run.status}


@shared_task(name="training.gpu.generate_candidates", acks_late=True)
def generate_candidates(run_id: int) -> dict[str, object]:
    """Sample candidates from a policy and publish them as a batch of comparisons."""
    from training.generation_runs import execute_generation_run

    run = execute_generation_run(run_id)
    return {"run_id": run.pk, "status": run.status, "batch_id": run.output_batch_id}


@shared_task(name="training.advance_round", acks_late=True)
def advance_round(round_id: int) -> dict[str, object]:
    """Move an RLHF round on from the step its row records (idempotent)."""
    from training.rounds import advance_round as advance

    r = advance(round_id)
    return {"round_id": r.pk, "status": r.status, "step": r.step}


@shared_task(name="training.watchdog", acks_late=True)
def watchdog() -> dict[str, list[int]]:
    """Under beat: re-queue or fail runs whose worker stopped heart-beating, and nudge the
    unfinished RLHF rounds (a round whose advancing worker died resumes at its step)."""
    from training.rounds import advance_active_rounds
    from training.run_lifecycle import reap_stalled_runs

    return reap_stalled_runs() | {"rounds": advance_active_rounds()}


@shared_task(name="training.validate_model_registration", acks_late=True)
def validate_model_registration(registration_id: int) -> dict[str, object]:
    """Validate a model directory an ML engineer registers in place (configs, tokenizer,
    safetensors headers, digest; never the weights) and create its artifact."""
    from preflab.errors import NotFoundError
    from training.model_registration import validate_registration

    try:
        registration = validate_registration(registration_id)
    except NotFoundError:  # deleted with its project before a worker got to it
        return {"registration_id": registration_id, "status": "missing", "artifact_id": None}
    return {
        "registration_id": registration.pk,
        "status": registration.status,
        "artifact_id": registration.artifact_id,
    }


register_run_task(RunKind.REWARD, train_reward_model)
for _kind in (RunKind.PPO, RunKind.GRPO, RunKind.RLOO, RunKind.DPO):
    register_run_task(_kind, train_policy)
register_run_task(RunKind.GENERATE, generate_candidates)
