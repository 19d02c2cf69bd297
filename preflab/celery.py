"""The Celery application: queues ``default`` and ``gpu``, configured from Django settings."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "preflab.settings")

app = Celery("preflab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["preflab", "annotation", "training"])
