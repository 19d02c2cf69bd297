"""Celery tasks of the training app; ``training.gpu.*`` tasks are routed to the gpu queue."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="training.gpu.train_reward_model", acks_late=True)
def train_reward_model(run_id: int) -> dict[str, object]:
    """Run or resume a reward-model run (the run row decides; finished runs are left alone)."""
    from training.services import execute_reward_run

    run = execute_reward_run(run_id)
    return {"run_id": run.pk, "status": run.status}


@shared_task(name="training.watchdog", acks_late=True)
def watchdog() -> dict[str, list[int]]:
    """Under beat: re-queue or fail runs whose worker stopped heart-beating."""
    from training.services import reap_stalled_runs

    return reap_stalled_runs()
