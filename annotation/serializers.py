"""Serializers of the annotation API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from annotation.export_options import MAX_EXPORT_BATCHES
from annotation.models import Project


class ProjectSerializer(serializers.ModelSerializer[Project]):
    role = serializers.CharField(source="my_role", allow_null=True, read_only=True)

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "instructions",
            "role",
            "overlap_k",
            "lease_ttl_seconds",
            "allow_tie",
            "allow_both_bad",
            "strength_scale",
            "rationale_mode",
            "gold_rate",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Project) -> dict[str, Any]:
        return super().to_representation(instance)


class MessageSerializer(serializers.Serializer[dict[str, str]]):
    role = serializers.CharField()
    content = serializers.CharField()


class ShownResponseSerializer(serializers.Serializer[Any]):
    content = serializers.CharField()


class LabelSchemeSerializer(serializers.Serializer[Any]):
    allow_tie = serializers.BooleanField()
    allow_both_bad = serializers.BooleanField()
    strength_scale = serializers.BooleanField()
    rationale_mode = serializers.CharField()


class QueueItemSerializer(serializers.Serializer[Any]):
    """What the annotator's page needs to render one comparison — and nothing more."""

    assignment_id = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    messages = MessageSerializer(many=True)
    left = ShownResponseSerializer()
    right = ShownResponseSerializer()
    scheme = LabelSchemeSerializer()


class NextRequestSerializer(serializers.Serializer[Any]):
    exclude = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=10, default=list
    )


class NextResponseSerializer(serializers.Serializer[Any]):
    item = QueueItemSerializer(allow_null=True)


class SubmitSerializer(serializers.Serializer[Any]):
    choice = serializers.ChoiceField(choices=["left", "right", "tie", "both_bad"])
    strength = serializers.IntegerField(min_value=1, max_value=4, required=False, allow_null=True)
    rationale = serializers.CharField(
        required=False, allow_blank=True, max_length=10_000, default=""
    )
    time_taken_ms = serializers.IntegerField(
        min_value=0, max_value=24 * 3600 * 1000, required=False, allow_null=True
    )


class JudgmentSerializer(serializers.Serializer[Any]):
    """The caller's own judgment, in the terms they answered (left / right)."""

    id = serializers.IntegerField()
    assignment_id = serializers.IntegerField()
    choice = serializers.CharField()
    strength = serializers.IntegerField(allow_null=True)
    rationale = serializers.CharField(allow_blank=True)
    time_taken_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class SkipSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class ProgressSerializer(serializers.Serializer[Any]):
    done_today = serializers.IntegerField()
    done_total = serializers.IntegerField()
    available_to_you = serializers.IntegerField()
    project_comparisons = serializers.IntegerField()
    project_judgments = serializers.IntegerField()
    project_judgments_needed = serializers.IntegerField()


class ImportRequestSerializer(serializers.Serializer[Any]):
    file = serializers.FileField()
    pairing = serializers.ChoiceField(
        choices=["all_pairs", "random_pairs", "adjacent"], default="all_pairs"
    )
    pairs_per_prompt = serializers.IntegerField(min_value=1, max_value=1000, default=3)
    skip_bad_lines = serializers.BooleanField(default=False)
    batch_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    seed = serializers.IntegerField(default=0)


class BadLineSerializer(serializers.Serializer[Any]):
    line = serializers.IntegerField()
    message = serializers.CharField()


class ImportReportSerializer(serializers.Serializer[Any]):
    batch_id = serializers.IntegerField(allow_null=True)
    lines = serializers.IntegerField()
    records_imported = serializers.IntegerField()
    prompts_created = serializers.IntegerField()
    responses_created = serializers.IntegerField()
    comparisons_created = serializers.IntegerField()
    comparisons_existing = serializers.IntegerField()
    bad_line_count = serializers.IntegerField()
    bad_lines = BadLineSerializer(many=True)


class AlphaSerializer(serializers.Serializer[Any]):
    value = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    units = serializers.IntegerField()
    reason = serializers.CharField(allow_null=True)


class QualityViewSerializer(serializers.Serializer[Any]):
    computed_at = serializers.DateTimeField(allow_null=True)
    stale = serializers.BooleanField()
    new_judgments = serializers.IntegerField()
    data = serializers.JSONField(  # type: ignore[assignment]  # a field named "data"
        allow_null=True,
        help_text="summary, batches, weeks, annotators, kappa, throughput, thresholds "
        "(see README, 'Quality').",
    )


class ExclusionSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    annotator_id = serializers.IntegerField()
    username = serializers.CharField(source="annotator.username")
    reason = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.CharField(source="revoked_by.username", allow_null=True, default=None)
    revoke_reason = serializers.CharField(allow_blank=True)
    active = serializers.BooleanField()


class ExclusionListSerializer(serializers.Serializer[Any]):
    results = ExclusionSerializer(many=True)


class ExcludeRequestSerializer(serializers.Serializer[Any]):
    annotator_id = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(max_length=2000)


class RevokeRequestSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000, allow_blank=True, required=False, default="")


class TaskEnqueuedSerializer(serializers.Serializer[Any]):
    task_id = serializers.CharField()


class DatasetExportSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    error = serializers.CharField(allow_blank=True)
    filters = serializers.JSONField()
    counts = serializers.JSONField()
    train_rows = serializers.IntegerField()
    test_rows = serializers.IntegerField()
    files = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_files(self, export: Any) -> dict[str, Any]:
        base = f"/api/projects/{export.project_id}/exports/{export.id}/files/"
        return {
            name: {**meta, **({"url": base + name} if name != "hf" else {})}
            for name, meta in (export.files or {}).items()
        }


class ExportRequestSerializer(serializers.Serializer[Any]):
    """Export options (all optional); see README, 'Exporting preference datasets'."""

    batches = serializers.ListField(
        child=serializers.IntegerField(), required=False, max_length=MAX_EXPORT_BATCHES
    )
    judged_after = serializers.DateTimeField(required=False, allow_null=True)
    judged_before = serializers.DateTimeField(required=False, allow_null=True)
    min_votes = serializers.IntegerField(required=False)
    min_confidence = serializers.FloatField(required=False)
    consensus = serializers.ChoiceField(choices=["majority", "dawid_skene"], required=False)
    ties = serializers.ChoiceField(choices=["exclude", "keep"], required=False)
    both_bad = serializers.ChoiceField(choices=["exclude", "keep"], required=False)
    include_gold = serializers.BooleanField(required=False)
    style = serializers.ChoiceField(choices=["conversational", "standard"], required=False)  # type: ignore[assignment]
    margins = serializers.DictField(child=serializers.FloatField(), required=False)
    test_fraction = serializers.FloatField(required=False)
    seed = serializers.IntegerField(required=False)
    formats = serializers.ListField(child=serializers.CharField(), required=False)
