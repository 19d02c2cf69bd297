"""Serializers of the training API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from training.models import ArtifactKind, ArtifactOrigin, RegistrationStatus, RunKind


class CreateRunSerializer(serializers.Serializer[Any]):
    """A run of any kind; which of the inputs are required depends on the kind."""

    kind = serializers.ChoiceField(choices=RunKind.choices, default=RunKind.REWARD)
    base_artifact = serializers.IntegerField(
        min_value=1, help_text="The model trained from (the generating policy for generate)."
    )
    dataset_export = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text="reward and dpo runs."
    )
    reward_artifact = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="ppo, grpo, rloo; generate with best_vs_worst or uncertain pairing.",
    )
    compare_artifact = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="generate with new_vs_previous pairing: the previous policy.",
    )
    prompt_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_empty=True,
        max_length=100_000,
        help_text="Prompts of ppo, grpo, rloo and generate runs (default: all).",
    )
    config = serializers.JSONField(required=False, default=dict)
    launcher = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=40,
        help_text="How the step executes: inprocess, subprocess, accelerate, … "
        "(default: the server's PREFLAB_DEFAULT_LAUNCHER). Training runs only.",
    )
    launcher_options = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text='The launcher\'s options, e.g. {"num_processes": 2, "config": "zero2"}.',
    )


class TrainingRunSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    config = serializers.JSONField()
    dataset_export_id = serializers.IntegerField(allow_null=True)
    base_artifact_id = serializers.IntegerField()
    reward_artifact_id = serializers.IntegerField(allow_null=True)
    compare_artifact_id = serializers.IntegerField(allow_null=True)
    prompt_count = serializers.SerializerMethodField()
    launcher = serializers.CharField()
    launcher_options = serializers.JSONField()
    output_artifact_id = serializers.IntegerField(allow_null=True)
    output_batch_id = serializers.IntegerField(allow_null=True)
    progress = serializers.FloatField()
    metrics = serializers.JSONField()
    error = serializers.CharField(allow_blank=True)
    worker = serializers.CharField(allow_blank=True)
    attempts = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_prompt_count(self, run: Any) -> int:
        return len(run.prompt_ids)


class ModelArtifactSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    path = serializers.CharField(
        help_text="Relative to ARTIFACT_ROOT, or absolute for a model registered in place."
    )
    origin = serializers.ChoiceField(
        choices=ArtifactOrigin.choices,
        help_text="preflab: made by Preflab; registered: an existing directory brought in.",
    )
    parent_id = serializers.IntegerField(allow_null=True)
    project_id = serializers.IntegerField(allow_null=True)
    dataset_export_id = serializers.IntegerField(allow_null=True)
    metrics = serializers.JSONField()
    model_info = serializers.JSONField(
        help_text="What validation recorded of a registered directory (empty otherwise)."
    )
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()


class RegisterModelSerializer(serializers.Serializer[Any]):
    """An existing model directory to register in place."""

    path = serializers.CharField(
        max_length=1024,
        trim_whitespace=False,
        help_text="Absolute path of the directory, inside one of PREFLAB_MODEL_ROOTS.",
    )
    kind = serializers.ChoiceField(
        choices=[
            (k.value, k.label)
            for k in (ArtifactKind.POLICY, ArtifactKind.REWARD, ArtifactKind.TOKENIZER)
        ],
        help_text="reward: one model or a Preflab ensemble directory (preflab_ensemble.json).",
    )
    name = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Default: the directory's name.",
    )


class ModelRegistrationSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    path = serializers.CharField()
    kind = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=RegistrationStatus.choices)
    error = serializers.CharField(allow_blank=True)
    info = serializers.JSONField()
    artifact_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class RunMetricSerializer(serializers.Serializer[Any]):
    step = serializers.IntegerField()
    values = serializers.JSONField()
    created_at = serializers.DateTimeField()


class StartRoundSerializer(serializers.Serializer[Any]):
    base_policy = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="Policy to improve (default: the last published round's policy).",
    )
    config = serializers.JSONField(required=False, default=dict)


class RoundSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    number = serializers.IntegerField()
    status = serializers.CharField()
    step = serializers.CharField()
    steps = serializers.SerializerMethodField()
    config = serializers.JSONField()
    base_policy_id = serializers.IntegerField()
    reward_base_id = serializers.IntegerField()
    judged_after = serializers.DateTimeField(allow_null=True)
    judged_before = serializers.DateTimeField(allow_null=True)
    dataset_export_id = serializers.IntegerField(allow_null=True)
    reward_run_id = serializers.IntegerField(allow_null=True)
    reward_artifact_id = serializers.IntegerField(allow_null=True)
    policy_run_id = serializers.IntegerField(allow_null=True)
    policy_artifact_id = serializers.IntegerField(allow_null=True)
    generation_run_id = serializers.IntegerField(allow_null=True)
    batch_id = serializers.IntegerField(allow_null=True)
    win_rate = serializers.SerializerMethodField()
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_steps(self, r: Any) -> list[dict[str, Any]]:
        from training.models import ROUND_STEPS

        return [
            {
                "name": step.value,
                "label": step.label,
                "status": r.steps.get(step, {}).get("status", "pending"),
                "started_at": r.steps.get(step, {}).get("started_at"),
                "finished_at": r.steps.get(step, {}).get("finished_at"),
                "detail": r.steps.get(step, {}).get("detail", {}),
            }
            for step in ROUND_STEPS
        ]

    def get_win_rate(self, r: Any) -> dict[str, Any] | None:
        """From the view's ``win_rates`` (a list reads them all in one query), else this
        round's own."""
        rates = self.context.get("win_rates")
        if rates is not None and r.pk in rates:
            return rates[r.pk]
        from training.round_selectors import round_win_rate

        return round_win_rate(r)


class LineageSerializer(serializers.Serializer[Any]):
    artifact = ModelArtifactSerializer()
    ancestors = ModelArtifactSerializer(many=True)
    run = TrainingRunSerializer(allow_null=True)
    dataset_export = serializers.SerializerMethodField()
    judgments = serializers.JSONField(allow_null=True)
    round = serializers.JSONField(allow_null=True)

    def get_dataset_export(self, lineage: Any) -> dict[str, Any] | None:
        from annotation.serializers import DatasetExportSerializer

        export = lineage["dataset_export"]
        return dict(DatasetExportSerializer(export).data) if export is not None else None
