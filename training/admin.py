"""Django admin for the model registry (read-only: artifacts are registered by code)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from preflab.errors import DomainError
from training.models import ModelArtifact, ModelRegistration, RoundDefaults, TrainingRun
from training.reward_runs import check_reward_run, create_reward_run
from training.round_config import check_round_defaults


@admin.register(ModelArtifact)
class ModelArtifactAdmin(admin.ModelAdmin[ModelArtifact]):
    list_display = ["id", "name", "kind", "origin", "project", "size_bytes", "created_at"]
    list_filter = ["kind", "origin", "project"]
    search_fields = ["name", "path", "sha256"]
    raw_id_fields = ["parent", "dataset_export", "project"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ModelRegistration)
class ModelRegistrationAdmin(admin.ModelAdmin[ModelRegistration]):
    """Registrations of existing model directories (made through the API or register_model)."""

    list_display = ["id", "path", "kind", "status", "project", "artifact", "created_at"]
    list_filter = ["status", "kind", "project"]
    search_fields = ["path", "name", "error"]
    raw_id_fields = ["project", "artifact", "created_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NewRewardRunForm(forms.ModelForm[TrainingRun]):
    """Queue a reward-model run from the admin, through the same checks as the API."""

    class Meta:
        model = TrainingRun
        fields = ["project", "dataset_export", "base_artifact", "config"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset_export"].required = True  # optional on the model (policy runs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        project, export, base = (
            data.get("project"),
            data.get("dataset_export"),
            data.get("base_artifact"),
        )
        if project and export and base:
            try:
                check_reward_run(
                    project=project,
                    dataset_export_id=export.pk,
                    base_artifact_id=base.pk,
                    config=data.get("config") or {},
                )
            except DomainError as exc:
                raise forms.ValidationError(f"{exc.message} {exc.extra or ''}".strip()) from None
        return data


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin[TrainingRun]):
    """Runs are queued here (add), through the API or ``manage.py train_reward_model``;
    an existing run is read-only."""

    list_display = [
        "id",
        "project",
        "kind",
        "status",
        "launcher",
        "progress",
        "attempts",
        "created_at",
    ]
    list_filter = ["kind", "status", "launcher", "project"]
    search_fields = ["worker", "error"]
    raw_id_fields = [
        "project",
        "dataset_export",
        "base_artifact",
        "reward_artifact",
        "compare_artifact",
        "output_artifact",
        "output_batch",
    ]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = NewRewardRunForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return NewRewardRunForm.Meta.fields
        return super().get_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: TrainingRun, form: Any, change: bool) -> None:
        if change or obj.dataset_export_id is None:
            return
        run = create_reward_run(
            project=obj.project,
            dataset_export_id=obj.dataset_export_id,
            base_artifact_id=obj.base_artifact_id,
            config=obj.config or {},
            user=request.user,
        )
        obj.pk = run.pk
        obj.refresh_from_db()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RoundDefaultsForm(forms.ModelForm[RoundDefaults]):
    """A project's round defaults, through the same checks as ``set_round_defaults``."""

    class Meta:
        model = RoundDefaults
        fields = ["project", "base_policy", "config"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        project = data.get("project") or getattr(self.instance, "project", None)
        if project is not None:
            base = data.get("base_policy")
            try:
                check_round_defaults(
                    project=project,
                    config=data.get("config") or {},
                    base_policy_id=base.pk if base is not None else None,
                )
            except DomainError as exc:
                raise forms.ValidationError(f"{exc.message} {exc.extra or ''}".strip()) from None
        return data


@admin.register(RoundDefaults)
class RoundDefaultsAdmin(admin.ModelAdmin[RoundDefaults]):
    """What a project's RLHF rounds start from (the console's form is filled with it)."""

    form = RoundDefaultsForm
    list_display = ["project", "base_policy", "updated_at"]
    raw_id_fields = ["project", "base_policy"]
