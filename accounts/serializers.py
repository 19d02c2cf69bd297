from __future__ import annotations

from typing import Any

from rest_framework import serializers


class ApiTokenSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)


class IssuedTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The secret: shown once, never stored.")


class ApiTokenListSerializer(serializers.Serializer[Any]):
    results = ApiTokenSerializer(many=True)


class NewTokenSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
