"""The per-annotator page of a project (project admins and superusers)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.annotator_selectors import MAX_DAYS, annotator_page
from annotation.permissions import IsProjectAdmin
from annotation.serializers import ExclusionSerializer


class AnnotatorPageQuerySerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS, required=False, default=30)


class AnnotatorPageView(APIView):
    """One annotator's throughput, agreement over time, gold accuracy, position bias, recent
    judgments and exclusion history. A user who is not of this project is a 404."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(
        parameters=[OpenApiParameter("days", int, description=f"Days of throughput, 1–{MAX_DAYS}")],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, project_id: int, user_id: int) -> Response:
        query = AnnotatorPageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = annotator_page(
            project_id=project_id, user_id=user_id, days=query.validated_data["days"]
        )
        return Response(
            {
                "annotator": page.annotator,
                "throughput": page.throughput,
                "agreement_weeks": page.agreement_weeks,
                "gold": page.gold,
                "position_bias": page.position_bias,
                "recent": page.recent,
                "exclusions": ExclusionSerializer(page.exclusions, many=True).data,
            }
        )
