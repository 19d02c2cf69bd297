"""Serializers of the annotation API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

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
