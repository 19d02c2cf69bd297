"""Django admin for the model registry (read-only: artifacts are registered by code)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from training.models import ModelArtifact, TrainingRun


@admin.register(ModelArtifact)
class ModelArtifactAdmin(admin.ModelAdmin[ModelArtifact]):
    list_display = ["id", "name", "kind", "project", "size_bytes", "created_at"]
    list_filter = ["kind", "project"]
    search_fields = ["name", "path", "sha256"]
    raw_id_fields = ["parent", "dataset_export", "project"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin[TrainingRun]):
    """Runs are created through the API or ``manage.py train_reward_model``; read-only here."""

    list_display = ["id", "project", "kind", "status", "progress", "attempts", "created_at"]
    list_filter = ["kind", "status", "project"]
    search_fields = ["worker", "error"]
    raw_id_fields = ["project", "dataset_export", "base_artifact", "output_artifact"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
