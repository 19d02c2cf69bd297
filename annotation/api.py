"""Annotation API views: thin; they validate, call a service or selector, and render."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import fields as drf_fields
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import project_admin, queue, services, tasks
from annotation.export import create_export, export_file_path
from annotation.export_options import InvalidExportOptions, parse_export_options
from annotation.importing import ImportOptions, Pairing, import_comparisons
from annotation.models import Comparison, DatasetExport, Project
from annotation.permissions import (
    IsProjectAdmin,
    IsProjectAdminOrMLEngineer,
    IsProjectAnnotator,
    has_project_role,
)
from annotation.presenters import display_choice, own_judgment, queue_item
from annotation.roles import Role
from annotation.selectors import (
    annotator_progress,
    exclusions_of,
    projects_for_user,
    quality_view,
)
from annotation.serializers import (
    DatasetExportSerializer,
    ExcludeRequestSerializer,
    ExclusionListSerializer,
    ExclusionSerializer,
    ExportRequestSerializer,
    ImportReportSerializer,
    ImportRequestSerializer,
    JudgmentSerializer,
    NextRequestSerializer,
    NextResponseSerializer,
    ProgressSerializer,
    ProjectSerializer,
    ProjectSettingsSerializer,
    QualityViewSerializer,
    QueueItemSerializer,
    RevokeRequestSerializer,
    SkipSerializer,
    SubmitSerializer,
    TaskEnqueuedSerializer,
)
from annotation.undo import undo_judgment
from preflab.errors import DomainError, ForbiddenError, InvalidInputError, NotFoundError


class ProjectListView(generics.ListAPIView[Project]):
    """Projects the caller is a member of (all of them for superusers); archived projects
    only with ``?archived=include`` (or ``only``). POST creates a project (superusers and
    holders of ``annotation.add_project``); its creator becomes its project admin."""

    serializer_class = ProjectSerializer

    def get_queryset(self) -> QuerySet[Project]:
        qs = projects_for_user(self.request.user).order_by("-created_at", "-id")
        archived = self.request.query_params.get("archived", "")
        if archived == "only":
            return qs.filter(archived_at__isnull=False)
        if archived != "include":
            return qs.filter(archived_at__isnull=True)
        return qs

    @extend_schema(request=ProjectSettingsSerializer, responses={201: ProjectSerializer})
    def post(self, request: Request) -> Response:
        if not project_admin.can_create_projects(request.user):
            raise project_admin.CannotCreateProjects(
                "You may not create projects: ask a site admin for the "
                f"“{project_admin.CREATE_PROJECT_PERMISSION}” permission."
            )
        data = ProjectSettingsSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        options = dict(data.validated_data)
        name = options.pop("name", None)
        if name is None:
            raise InvalidInputError(
                "name: This field is required.", extra={"fields": {"name": ["required"]}}
            )
        project = project_admin.create_project_as(user=request.user, name=name, **options)
        created = projects_for_user(request.user).get(pk=project.pk)
        return Response(ProjectSerializer(created).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(generics.RetrieveAPIView[Project]):
    """One project; a project the caller is not a member of is a 404. PATCH edits its
    settings (project admins)."""

    serializer_class = ProjectSerializer
    lookup_url_kwarg = "project_id"

    def get_queryset(self) -> QuerySet[Project]:
        return projects_for_user(self.request.user)

    @extend_schema(request=ProjectSettingsSerializer, responses=ProjectSerializer)
    def patch(self, request: Request, project_id: int) -> Response:
        project = self.get_object()
        if not has_project_role(request.user, project.pk, frozenset({Role.PROJECT_ADMIN})):
            raise ForbiddenError("Only the project's admins may change its settings.")
        data = ProjectSettingsSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project_admin.update_project_settings(project=project, changes=dict(data.validated_data))
        return Response(ProjectSerializer(self.get_object()).data)


class QueueNextView(APIView):
    """Lease the next comparison (or return the caller's live lease). The service checks the
    caller's role inside its transaction (403 for anyone not an annotator of the project)."""

    @extend_schema(request=NextRequestSerializer, responses=NextResponseSerializer)
    def post(self, request: Request, project_id: int) -> Response:
        data = NextRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = queue.lease_next(
            project_id=project_id, user=request.user, exclude=data.validated_data["exclude"]
        )
        if assignment is None:
            return Response({"item": None})
        return Response({"item": queue_item(assignment)})


class SubmitView(APIView):
    """Submit the judgment for a lease; a retry returns the stored judgment (200). Only the
    lease's own annotator, still an annotator of the project, finds it (else 404)."""

    @extend_schema(
        request=SubmitSerializer, responses={201: JudgmentSerializer, 200: JudgmentSerializer}
    )
    def post(self, request: Request, project_id: int, assignment_id: int) -> Response:
        data = SubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        judgment, created = queue.submit_judgment(
            project_id=project_id,
            assignment_id=assignment_id,
            user=request.user,
            data=queue.JudgmentInput(**data.validated_data),
        )
        return Response(
            own_judgment(judgment),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class SkipView(APIView):
    permission_classes = [IsProjectAnnotator]

    @extend_schema(request=SkipSerializer, responses={204: None})
    def post(self, request: Request, project_id: int, assignment_id: int) -> Response:
        data = SkipSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        queue.skip_assignment(
            project_id=project_id,
            assignment_id=assignment_id,
            user=request.user,
            reason=data.validated_data["reason"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReleaseView(APIView):
    permission_classes = [IsProjectAnnotator]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, project_id: int, assignment_id: int) -> Response:
        queue.release_assignment(
            project_id=project_id, assignment_id=assignment_id, user=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProgressView(APIView):
    permission_classes = [IsProjectAnnotator]

    @extend_schema(responses=ProgressSerializer)
    def get(self, request: Request, project_id: int) -> Response:
        return Response(annotator_progress(project_id=project_id, user=request.user))


class UploadTooLarge(DomainError):
    code = "upload_too_large"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def refuse_too_large(upload: Any) -> None:
    """413 for an upload over ``PREFLAB_MAX_IMPORT_BYTES``."""
    limit: int = settings.PREFLAB_MAX_IMPORT_BYTES
    if upload.size > limit:
        raise UploadTooLarge(
            f"The file is {upload.size} bytes; the limit is {limit}.",
            extra={"limit_bytes": limit},
        )


class ImportView(APIView):
    """Upload a JSONL / JSON-array file of comparisons (project admins)."""

    permission_classes = [IsProjectAdmin]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=ImportRequestSerializer, responses={201: ImportReportSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        data = ImportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload: Any = data.validated_data["file"]
        refuse_too_large(upload)
        project = Project.objects.get(pk=project_id)
        options = ImportOptions(
            pairing=Pairing(data.validated_data["pairing"]),
            pairs_per_prompt=data.validated_data["pairs_per_prompt"],
            skip_bad_lines=data.validated_data["skip_bad_lines"],
            batch_name=data.validated_data["batch_name"],
            seed=data.validated_data["seed"],
        )
        upload.seek(0)
        report = import_comparisons(
            project=project,
            stream=upload.file,
            options=options,
            user=request.user,
            source_name=upload.name or "",
        )
        return Response(report.as_dict(), status=status.HTTP_201_CREATED)


class QualityView(APIView):
    """The project's cached agreement statistics (project admins)."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(responses=QualityViewSerializer)
    def get(self, request: Request, project_id: int) -> Response:
        return Response(QualityViewSerializer(quality_view(project_id=project_id)).data)


class QualityRecomputeView(APIView):
    """Recompute the statistics now, on a worker."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(request=None, responses={202: TaskEnqueuedSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        """Queued at most once at a time: a second request while one is queued gets the
        queued task's id."""
        task_id, _ = tasks.enqueue_quality_recompute(project_id)
        return Response({"task_id": task_id}, status=status.HTTP_202_ACCEPTED)


class ExclusionListView(APIView):
    """The exclusion audit trail (GET) and a new exclusion (POST)."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(responses=ExclusionListSerializer)
    def get(self, request: Request, project_id: int) -> Response:
        rows = exclusions_of(project_id=project_id)
        return Response({"results": ExclusionSerializer(rows, many=True).data})

    @extend_schema(request=ExcludeRequestSerializer, responses={201: ExclusionSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        data = ExcludeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        exclusion = services.exclude_annotator(
            project=Project.objects.get(pk=project_id),
            annotator_id=data.validated_data["annotator_id"],
            reason=data.validated_data["reason"],
            by=request.user,
        )
        return Response(ExclusionSerializer(exclusion).data, status=status.HTTP_201_CREATED)


class ExclusionRevokeView(APIView):
    permission_classes = [IsProjectAdmin]

    @extend_schema(request=RevokeRequestSerializer, responses=ExclusionSerializer)
    def post(self, request: Request, project_id: int, exclusion_id: int) -> Response:
        data = RevokeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        exclusion = services.revoke_exclusion(
            project=Project.objects.get(pk=project_id),
            exclusion_id=exclusion_id,
            reason=data.validated_data["reason"],
            by=request.user,
        )
        return Response(ExclusionSerializer(exclusion).data)


class ExportListView(APIView):
    """Dataset exports of a project (project admins and ML engineers)."""

    permission_classes = [IsProjectAdminOrMLEngineer]

    @extend_schema(
        operation_id="projects_exports_list",
        responses=inline_serializer(
            "DatasetExportList", {"results": DatasetExportSerializer(many=True)}
        ),
    )
    def get(self, request: Request, project_id: int) -> Response:
        exports = DatasetExport.objects.filter(project_id=project_id).select_related("created_by")
        return Response({"results": DatasetExportSerializer(exports[:200], many=True).data})

    @extend_schema(
        request=ExportRequestSerializer,
        responses={201: DatasetExportSerializer, 202: DatasetExportSerializer},
    )
    def post(self, request: Request, project_id: int) -> Response:
        if not isinstance(request.data, dict):
            raise InvalidExportOptions("Send the export options as a JSON object.")
        options = parse_export_options(dict(request.data))
        project = Project.objects.get(pk=project_id)
        size = Comparison.objects.filter(project_id=project_id).count()
        if size <= settings.PREFLAB_EXPORT_SYNC_MAX:
            export = create_export(project=project, options=options, user=request.user)
            return Response(DatasetExportSerializer(export).data, status=status.HTTP_201_CREATED)
        export = DatasetExport.objects.create(
            project=project, created_by=cast(Any, request.user), filters=options.as_json()
        )
        transaction.on_commit(lambda: tasks.run_export.delay(export.pk))
        return Response(DatasetExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailView(APIView):
    permission_classes = [IsProjectAdminOrMLEngineer]

    @extend_schema(responses=DatasetExportSerializer)
    def get(self, request: Request, project_id: int, export_id: int) -> Response:
        export = (
            DatasetExport.objects.select_related("created_by")
            .filter(pk=export_id, project_id=project_id)
            .first()
        )
        if export is None:
            raise NotFoundError("No such export in this project.")
        return Response(DatasetExportSerializer(export).data)


class ExportFileView(APIView):
    """Download one file of a finished export (streamed from disk)."""

    permission_classes = [IsProjectAdminOrMLEngineer]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, project_id: int, export_id: int, name: str) -> Any:
        export = DatasetExport.objects.filter(pk=export_id, project_id=project_id).first()
        path = export_file_path(export, name) if export is not None else None
        if path is None:
            raise NotFoundError("No such file in this export.")
        response = FileResponse(path.open("rb"), as_attachment=True, filename=name)
        response["X-Content-SHA256"] = export.files[name]["sha256"]  # type: ignore[union-attr]
        return response


class UndoView(APIView):
    """Undo the caller's latest judgment (within the undo window, while its comparison has
    fewer than k judgments): the lease is live again and the page shows the item again with
    the undone answer as a draft. Someone else's lease is not found (404)."""

    permission_classes = [IsProjectAnnotator]

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "UndoResponse",
            {
                "item": QueueItemSerializer(),
                "draft": inline_serializer(
                    "UndoDraft",
                    {
                        "choice": drf_fields.CharField(),
                        "strength": drf_fields.IntegerField(allow_null=True),
                        "rationale": drf_fields.CharField(allow_blank=True),
                    },
                ),
                "revision_id": drf_fields.IntegerField(),
            },
        ),
    )
    def post(self, request: Request, project_id: int, assignment_id: int) -> Response:
        result = undo_judgment(
            project_id=project_id, assignment_id=assignment_id, user=request.user
        )
        revision = result.revision
        return Response(
            {
                "item": queue_item(result.lease),
                "draft": {
                    "choice": display_choice(revision.choice, revision.swapped),
                    "strength": revision.strength,
                    "rationale": revision.rationale,
                },
                "revision_id": revision.pk,
            }
        )
