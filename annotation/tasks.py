"""Celery wrappers of annotation services."""

from __future__ import annotations

from celery import shared_task

from annotation.queue import expire_overdue_leases


@shared_task(name="annotation.expire_leases", acks_late=True)
def expire_leases() -> int:
    """Free the slots of overdue leases (idempotent; runs every minute under beat)."""
    return expire_overdue_leases()
