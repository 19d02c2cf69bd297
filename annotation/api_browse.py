"""The data browser's API: a project's prompts, comparisons and judgments, read-only, one
keyset page at a time, and one comparison with its full history.

Project admins and ML engineers may read (ML engineers already export the same judgments as
datasets); annotators may not (they never see others' labels)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.browse_selectors import (
    Page,
    browse_comparisons,
    browse_judgments,
    browse_prompts,
    comparison_history,
)
from annotation.browse_serializers import (
    ComparisonQuerySerializer,
    JudgmentQuerySerializer,
    ListQuerySerializer,
    PromptQuerySerializer,
)
from annotation.permissions import IsProjectAdminOrMLEngineer


class _BrowseListView(APIView):
    permission_classes = [IsProjectAdminOrMLEngineer]
    query_serializer: ClassVar[type[ListQuerySerializer]]
    selector: ClassVar[Callable[..., Page]]

    def get(self, request: Request, project_id: int) -> Response:
        query = self.query_serializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        page = type(self).selector(
            project_id=project_id,
            filters=query.filters(),
            cursor=query.validated_data.get("cursor"),
            limit=query.validated_data["limit"],
        )
        body: dict[str, Any] = {
            "results": page.results,
            "next_cursor": page.next_cursor,
            "limit": query.validated_data["limit"],
        }
        return Response(body)


class PromptBrowseView(_BrowseListView):
    """A project's prompts, newest first (filters: batch, external_id)."""

    query_serializer = PromptQuerySerializer
    selector = browse_prompts

    @extend_schema(parameters=[PromptQuerySerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, project_id: int) -> Response:
        return super().get(request, project_id)


class ComparisonBrowseView(_BrowseListView):
    """A project's comparisons, newest first (filters: batch, annotator, prompt, status, gold,
    agreement_min, agreement_max)."""

    query_serializer = ComparisonQuerySerializer
    selector = browse_comparisons

    @extend_schema(parameters=[ComparisonQuerySerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, project_id: int) -> Response:
        return super().get(request, project_id)


class JudgmentBrowseView(_BrowseListView):
    """A project's judgments, newest first (filters: batch, annotator, prompt, comparison,
    choice, gold)."""

    query_serializer = JudgmentQuerySerializer
    selector = browse_judgments

    @extend_schema(parameters=[JudgmentQuerySerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, project_id: int) -> Response:
        return super().get(request, project_id)


class ComparisonHistoryView(APIView):
    """One comparison with every judgment, undone judgment and lease made on it."""

    permission_classes = [IsProjectAdminOrMLEngineer]

    @extend_schema(operation_id="projects_data_comparison_history", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, project_id: int, comparison_id: int) -> Response:
        return Response(comparison_history(project_id=project_id, comparison_id=comparison_id))
