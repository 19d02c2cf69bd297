"""Celery wrappers of annotation services."""

from __future__ import annotations

import contextlib
import uuid

from celery import shared_task
from django.core.cache import cache

from annotation.queue import expire_overdue_leases


@shared_task(name="annotation.expire_leases", acks_late=True)
def expire_leases() -> int:
    """Free the slots of overdue leases (idempotent; runs every minute under beat)."""
    return expire_overdue_leases()


QUEUED_TTL = 3600  # a recompute marked queued that never ran stops blocking after an hour


def _queued_key(project_id: int) -> str:
    return f"quality-recompute-queued:{project_id}"


def enqueue_quality_recompute(project_id: int) -> tuple[str, bool]:
    """Queue a recompute of the project's statistics unless one is queued already: one at a
    time per project, however often admins press the button or the beat fires. Returns the
    task id (the queued one's, when there is one) and whether this call queued it. The mark
    lives in the cache; while the cache is down, this fails open (queues)."""
    key, task_id = _queued_key(project_id), str(uuid.uuid4())
    try:
        queued = None if cache.add(key, task_id, QUEUED_TTL) else cache.get(key)
    except Exception:
        queued = None
    if queued:
        return str(queued), False
    try:
        recompute_quality.apply_async((project_id,), task_id=task_id)
    except Exception:
        with contextlib.suppress(Exception):
            cache.delete(key)  # nothing was queued: do not block the next request
        raise
    return task_id, True


@shared_task(name="annotation.recompute_quality", acks_late=True)
def recompute_quality(project_id: int) -> dict[str, object]:
    """Recompute a project's agreement statistics (idempotent: a new snapshot replaces the old).
    Clears the project's queued mark first, so a request during the computation queues the
    next one."""
    from annotation.quality import recompute_quality as recompute

    with contextlib.suppress(Exception):
        cache.delete(_queued_key(project_id))
    snapshot = recompute(project_id=project_id)
    return {
        "project_id": project_id,
        "judgments": snapshot.judgment_count,
        "seconds": snapshot.seconds,
    }


@shared_task(name="annotation.refresh_quality", acks_late=True)
def refresh_quality() -> list[int]:
    """Under beat: enqueue a recompute for projects with enough new judgments."""
    from annotation.quality import projects_needing_recompute

    project_ids = projects_needing_recompute()
    return [p for p in project_ids if enqueue_quality_recompute(p)[1]]


@shared_task(name="annotation.run_export", acks_late=True)
def run_export(export_id: int) -> dict[str, object]:
    """Write a queued dataset export (idempotent: a finished export is left as it is)."""
    from annotation.export import run_export as run

    export = run(export_id)
    return {"export_id": export.pk, "status": export.status}


@shared_task(name="annotation.run_import_job", acks_late=True)
def run_import_job(job_id: int) -> dict[str, object]:
    """Run a queued import job (idempotent: a finished job, or one another execution holds,
    is left as it is; after a lost worker the redelivered task runs it again — its import
    was rolled back with the worker's transaction)."""
    from annotation.import_jobs import run_import_job as run

    outcome = run(job_id)
    return {"job_id": outcome.job_id, "ran": outcome.ran, "status": outcome.status}
