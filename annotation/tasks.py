"""Celery wrappers of annotation services."""

from __future__ import annotations

from celery import shared_task

from annotation.queue import expire_overdue_leases


@shared_task(name="annotation.expire_leases", acks_late=True)
def expire_leases() -> int:
    """Free the slots of overdue leases (idempotent; runs every minute under beat)."""
    return expire_overdue_leases()


@shared_task(name="annotation.recompute_quality", acks_late=True)
def recompute_quality(project_id: int) -> dict[str, object]:
    """Recompute a project's agreement statistics (idempotent: a new snapshot replaces the old)."""
    from annotation.quality import recompute_quality as recompute

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
    for project_id in project_ids:
        recompute_quality.delay(project_id)
    return project_ids


@shared_task(name="annotation.run_export", acks_late=True)
def run_export(export_id: int) -> dict[str, object]:
    """Write a queued dataset export (idempotent: a finished export is left as it is)."""
    from annotation.export import run_export as run

    export = run(export_id)
    return {"export_id": export.pk, "status": export.status}
