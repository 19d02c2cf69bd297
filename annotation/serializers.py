"""Serializers of the annotation API."""

from __future__ import annotations

import math
from typing import Any

from rest_framework import serializers

from annotation.export_options import MAX_EXPORT_BATCHES
from annotation.models import Project, RationaleMode
from annotation.roles import Role


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
            "min_gold_accuracy",
            "min_consensus_agreement",
            "min_median_seconds",
            "max_position_p_value",
            "archived_at",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Project) -> dict[str, Any]:
        return super().to_representation(instance)


def _finite(value: float) -> None:
    if not math.isfinite(value):
        raise serializers.ValidationError("A finite number is required.")


class ProjectSettingsSerializer(serializers.Serializer[dict[str, Any]]):
    """A project's editable settings; on PATCH every field is optional. Ranges are the
    model's own validators (checked again by the service's ``full_clean``)."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=10_000, allow_blank=True)
    instructions = serializers.CharField(
        max_length=100_000, allow_blank=True, trim_whitespace=False
    )
    overlap_k = serializers.IntegerField(min_value=1, max_value=50)
    lease_ttl_seconds = serializers.IntegerField(min_value=30, max_value=24 * 3600)
    allow_tie = serializers.BooleanField()
    allow_both_bad = serializers.BooleanField()
    strength_scale = serializers.BooleanField()
    rationale_mode = serializers.ChoiceField(choices=RationaleMode.choices)
    gold_rate = serializers.FloatField(min_value=0.0, max_value=1.0, validators=[_finite])
    min_gold_accuracy = serializers.FloatField(min_value=0.0, max_value=1.0, validators=[_finite])
    min_consensus_agreement = serializers.FloatField(
        min_value=0.0, max_value=1.0, validators=[_finite]
    )
    min_median_seconds = serializers.FloatField(
        min_value=0.0, max_value=3600.0, validators=[_finite]
    )
    max_position_p_value = serializers.FloatField(
        min_value=0.0, max_value=1.0, validators=[_finite]
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({key: ["Not a project setting."] for key in unknown})
        for key, field in self.fields.items():
            value = data.get(key)
            strict = {
                serializers.BooleanField: bool,
                serializers.CharField: str,
                serializers.ChoiceField: str,
            }
            expected = strict.get(type(field))
            if key in data and expected is not None and not isinstance(value, expected):
                raise serializers.ValidationError({key: [f"Expected a {expected.__name__}."]})
            if key in data and isinstance(
                field, (serializers.IntegerField, serializers.FloatField)
            ):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise serializers.ValidationError({key: ["Expected a number."]})
        return super().to_internal_value(data)


class MemberSerializer(serializers.Serializer[Any]):
    user_id = serializers.IntegerField(source="user.id")
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")
    role = serializers.CharField()
    joined_at = serializers.DateTimeField(source="created_at")
    judgment_count = serializers.IntegerField()
    last_judgment_at = serializers.DateTimeField(allow_null=True)


class AddMemberSerializer(serializers.Serializer[dict[str, Any]]):
    """Either ``user`` (an existing username or email) or ``username`` + ``password``
    (+ ``email``) for a new account; and the role."""

    role = serializers.ChoiceField(choices=Role.choices)
    user = serializers.CharField(max_length=254, required=False)
    username = serializers.CharField(max_length=150, required=False)
    password = serializers.CharField(max_length=1024, required=False, trim_whitespace=False)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        existing = "user" in attrs
        new = "username" in attrs or "password" in attrs
        if existing == new:
            raise serializers.ValidationError(
                "Give either an existing user (user) or a new account (username, password)."
            )
        if new and not ("username" in attrs and "password" in attrs):
            raise serializers.ValidationError("A new account needs a username and a password.")
        return attrs


class RoleSerializer(serializers.Serializer[dict[str, Any]]):
    role = serializers.ChoiceField(choices=Role.choices)


class InviteSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    role = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    expires_at = serializers.DateTimeField()
    used_at = serializers.DateTimeField(allow_null=True)
    used_by = serializers.CharField(source="used_by.username", allow_null=True, default=None)
    revoked_at = serializers.DateTimeField(allow_null=True)
    state = serializers.CharField()


class CreateInviteSerializer(serializers.Serializer[dict[str, Any]]):
    role = serializers.ChoiceField(choices=Role.choices)
    expires_in_hours = serializers.IntegerField(min_value=1, max_value=90 * 24, default=7 * 24)


class AcceptInviteSerializer(serializers.Serializer[dict[str, Any]]):
    username = serializers.CharField(max_length=150, required=False, default="")
    password = serializers.CharField(
        max_length=1024, required=False, default="", trim_whitespace=False
    )
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")


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
    undone_judgments = serializers.IntegerField(
        help_text="Judgments the snapshot counted that were undone after it was computed."
    )
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
