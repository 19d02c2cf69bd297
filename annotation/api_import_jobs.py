"""Import job API (project admins): upload a file as a job, follow it, cancel it, download its
bad lines. Thin views over :mod:`annotation.import_jobs`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import import_jobs
from annotation.api import refuse_too_large
from annotation.importing import ImportOptions, Pairing
from annotation.models import ImportJob, Project
from annotation.permissions import IsProjectAdmin
from annotation.serializers import BadLineSerializer, ImportRequestSerializer
from preflab.errors import InvalidInputError, NotFoundError

LIST_LIMIT = 100


class EmptyUpload(InvalidInputError):
    code = "empty_upload"


class ImportJobSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    original_name = serializers.CharField()
    size_bytes = serializers.IntegerField()
    bytes_read = serializers.IntegerField()
    lines_read = serializers.IntegerField()
    options = serializers.JSONField()
    records_imported = serializers.IntegerField()
    prompts_created = serializers.IntegerField()
    responses_created = serializers.IntegerField()
    comparisons_created = serializers.IntegerField()
    comparisons_existing = serializers.IntegerField()
    bad_line_count = serializers.IntegerField()
    bad_lines = BadLineSerializer(many=True)
    batch_id = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    cancel_requested = serializers.BooleanField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    bad_lines_url = serializers.SerializerMethodField()

    def get_bad_lines_url(self, job: ImportJob) -> str:
        return f"/api/projects/{job.project_id}/import-jobs/{job.id}/bad-lines"


class ImportJobSummarySerializer(ImportJobSerializer):
    """A job in the list: without its bad lines."""

    bad_lines = None  # type: ignore[assignment]


def _job_of(project_id: int, job_id: int) -> ImportJob:
    job = (
        ImportJob.objects.select_related("created_by")
        .filter(pk=job_id, project_id=project_id)
        .first()
    )
    if job is None:
        raise NotFoundError("No such import job in this project.")
    return job


class ImportJobListView(APIView):
    """The project's import jobs, newest first (GET); upload a file as a new job (POST)."""

    permission_classes = [IsProjectAdmin]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="projects_import_jobs_list",
        responses=inline_serializer(
            "ImportJobList", {"results": ImportJobSummarySerializer(many=True)}
        ),
    )
    def get(self, request: Request, project_id: int) -> Response:
        import_jobs.fail_lost_jobs(project_id=project_id)
        jobs = ImportJob.objects.filter(project_id=project_id).select_related("created_by")
        return Response({"results": ImportJobSummarySerializer(jobs[:LIST_LIMIT], many=True).data})

    @extend_schema(
        request=ImportRequestSerializer,
        responses={201: ImportJobSerializer, 202: ImportJobSerializer},
    )
    def post(self, request: Request, project_id: int) -> Response:
        """Files up to ``PREFLAB_IMPORT_INLINE_BYTES`` are imported now (201, the finished
        job: succeeded, or failed with its bad lines); larger ones are queued (202)."""
        data = ImportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload: Any = data.validated_data["file"]
        refuse_too_large(upload)
        if upload.size == 0:
            raise EmptyUpload("The file is empty.")
        project = Project.objects.get(pk=project_id)
        options = ImportOptions(
            pairing=Pairing(data.validated_data["pairing"]),
            pairs_per_prompt=data.validated_data["pairs_per_prompt"],
            skip_bad_lines=data.validated_data["skip_bad_lines"],
            batch_name=data.validated_data["batch_name"],
            seed=data.validated_data["seed"],
        )
        job = import_jobs.create_import_job(
            project=project,
            user=request.user,
            upload=upload,
            original_name=upload.name or "",
            options=options,
        )
        if job.size_bytes <= settings.PREFLAB_IMPORT_INLINE_BYTES:
            job = import_jobs.run_inline(job)
            return Response(ImportJobSerializer(job).data, status=status.HTTP_201_CREATED)
        import_jobs.enqueue_import_job(job)
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportJobDetailView(APIView):
    """One import job: status, progress 0..1, counts, its first bad lines."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(responses=ImportJobSerializer)
    def get(self, request: Request, project_id: int, job_id: int) -> Response:
        import_jobs.fail_lost_jobs(project_id=project_id)
        return Response(ImportJobSerializer(_job_of(project_id, job_id)).data)


class ImportJobCancelView(APIView):
    """Cancel a queued or running job: nothing of it is kept (409 once it has finished)."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(request=None, responses=ImportJobSerializer)
    def post(self, request: Request, project_id: int, job_id: int) -> Response:
        job = import_jobs.request_cancel(job=_job_of(project_id, job_id))
        return Response(ImportJobSerializer(job).data)


class ImportJobBadLinesView(APIView):
    """Every bad line of the job as a download: JSONL (default) or CSV (``?as=csv``), with
    its line number, the reason and the line's text."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(
        parameters=[OpenApiParameter("as", str, enum=["jsonl", "csv"], required=False)],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.BINARY,
            (200, "text/csv"): OpenApiTypes.BINARY,
        },
    )
    def get(self, request: Request, project_id: int, job_id: int) -> Any:
        kind = request.query_params.get("as", "jsonl")
        if kind not in ("jsonl", "csv"):
            raise InvalidInputError("'as' must be 'jsonl' or 'csv'.", extra={"field": "as"})
        job = _job_of(project_id, job_id)
        response = StreamingHttpResponse(
            import_jobs.bad_line_exports(job, kind),
            content_type="text/csv" if kind == "csv" else "application/x-ndjson",
        )
        name = f"import-{job.id}-bad-lines.{kind}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
