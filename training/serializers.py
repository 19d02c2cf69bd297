"""Serializers of the training API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class CreateRewardRunSerializer(serializers.Serializer[Any]):
    dataset_export = serializers.IntegerField(min_value=1)
    base_artifact = serializers.IntegerField(min_value=1)
    config = serializers.JSONField(required=False, default=dict)


class TrainingRunSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    config = serializers.JSONField()
    dataset_export_id = serializers.IntegerField()
    base_artifact_id = serializers.IntegerField()
    output_artifact_id = serializers.IntegerField(allow_null=True)
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


class ModelArtifactSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    path = serializers.CharField()
    parent_id = serializers.IntegerField(allow_null=True)
    project_id = serializers.IntegerField(allow_null=True)
    dataset_export_id = serializers.IntegerField(allow_null=True)
    metrics = serializers.JSONField()
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
