"""Preflab: human preference annotation with an integrated RLHF training backend."""

from preflab.celery import app as celery_app

__all__ = ["celery_app"]
