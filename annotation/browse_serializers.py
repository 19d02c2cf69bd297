"""Query parameters of the data browser's lists: every filter validated, unknown ones refused.

Views pass ``request.query_params.dict()`` (a plain dict: an omitted boolean stays omitted)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from rest_framework import serializers

from annotation.browse_selectors import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    STATUSES,
    BrowseFilters,
    decode_cursor,
)
from annotation.models import Choice
from preflab.errors import DomainError

MAX_ID = 2**63 - 1


def _id_field() -> serializers.IntegerField:
    return serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


class ListQuerySerializer(serializers.Serializer[Any]):
    """``cursor`` and ``limit``; subclasses add their filters and name their list."""

    kind: ClassVar[str] = ""
    cursor = serializers.CharField(required=False, max_length=64, help_text="next_cursor.")
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT
    )

    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Not a filter of this list."] for name in unknown}
            )
        return super().to_internal_value(data)

    def validate_cursor(self, value: str) -> tuple[int, ...]:
        try:
            return decode_cursor(self.kind, value)
        except DomainError as exc:
            raise serializers.ValidationError("Not a cursor of this list.") from exc

    def filters(self) -> BrowseFilters:
        data = dict(self.validated_data)
        data.pop("cursor", None)
        data.pop("limit", None)
        return BrowseFilters(**data)


class PromptQuerySerializer(ListQuerySerializer):
    kind = "prompts"
    batch = _id_field()
    external_id = serializers.CharField(required=False, max_length=255)


class ComparisonQuerySerializer(ListQuerySerializer):
    kind = "comparisons"
    batch = _id_field()
    annotator = _id_field()
    prompt = _id_field()
    status = serializers.ChoiceField(choices=STATUSES, required=False)
    gold = serializers.BooleanField(required=False)
    agreement_min = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    agreement_max = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name in ("agreement_min", "agreement_max"):
            if name in attrs and not math.isfinite(attrs[name]):
                raise serializers.ValidationError({name: ["Must be a number from 0 to 1."]})
        low, high = attrs.get("agreement_min"), attrs.get("agreement_max")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError(
                {"agreement_min": ["Must not be greater than agreement_max."]}
            )
        return attrs


class JudgmentQuerySerializer(ListQuerySerializer):
    kind = "judgments"
    batch = _id_field()
    annotator = _id_field()
    prompt = _id_field()
    comparison = _id_field()
    choice = serializers.ChoiceField(choices=Choice.values, required=False)
    gold = serializers.BooleanField(required=False)
