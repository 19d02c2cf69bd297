"""Platform-level Celery tasks."""

from __future__ import annotations

import os
import socket

from celery import shared_task
from django.utils import timezone


@shared_task(name="preflab.ping", acks_late=True)
def ping() -> dict[str, object]:
    """Health task: proves a worker consumes the queue. Idempotent (no side effects)."""
    return {
        "pong": True,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "at": timezone.now().isoformat(),
    }
