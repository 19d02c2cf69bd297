"""Training API (ML engineers of the project): reward-model runs."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Project
from annotation.permissions import IsProjectMLEngineer
from preflab.errors import NotFoundError
from training import services
from training.models import ModelArtifact, TrainingRun
from training.serializers import (
    CreateRewardRunSerializer,
    ModelArtifactSerializer,
    TrainingRunSerializer,
)


def _run(project_id: int, run_id: int) -> TrainingRun:
    run = TrainingRun.objects.filter(pk=run_id, project_id=project_id).first()
    if run is None:
        raise NotFoundError("No such training run in this project.")
    return run


class TrainingRunListView(APIView):
    permission_classes = [IsProjectMLEngineer]

    @extend_schema(responses=TrainingRunSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        runs = TrainingRun.objects.filter(project_id=project_id)[:200]
        return Response({"results": TrainingRunSerializer(runs, many=True).data})

    @extend_schema(request=CreateRewardRunSerializer, responses={201: TrainingRunSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        data = CreateRewardRunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.create_reward_run(
            project=Project.objects.get(pk=project_id),
            dataset_export_id=data.validated_data["dataset_export"],
            base_artifact_id=data.validated_data["base_artifact"],
            config=data.validated_data["config"],
            user=request.user,
        )
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)


class TrainingRunDetailView(APIView):
    permission_classes = [IsProjectMLEngineer]

    @extend_schema(responses=TrainingRunSerializer)
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        return Response(TrainingRunSerializer(_run(project_id, run_id)).data)


class TrainingRunCancelView(APIView):
    permission_classes = [IsProjectMLEngineer]

    @extend_schema(request=None, responses=TrainingRunSerializer)
    def post(self, request: Request, project_id: int, run_id: int) -> Response:
        run = services.request_cancel(run=_run(project_id, run_id))
        return Response(TrainingRunSerializer(run).data)


class ModelArtifactListView(APIView):
    """The registry as this project sees it: its own artifacts and the shared base models."""

    permission_classes = [IsProjectMLEngineer]

    @extend_schema(responses=ModelArtifactSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        artifacts = ModelArtifact.objects.filter(
            Q(project_id=project_id) | Q(project__isnull=True)
        )[:500]
        return Response({"results": ModelArtifactSerializer(artifacts, many=True).data})
