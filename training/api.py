"""Training API (ML engineers of the project): runs of every kind, their metrics, the
registry."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Project
from annotation.permissions import IsProjectMLEngineer
from preflab.errors import InvalidInputError, NotFoundError
from training.generation_runs import create_generation_run
from training.model_registration import request_registration
from training.models import RunKind, TrainingRun
from training.policy_runs import create_policy_run
from training.reward_runs import create_reward_run
from training.run_lifecycle import request_cancel
from training.selectors import (
    project_artifacts,
    project_registrations,
    project_run,
    project_runs,
    run_metrics,
)
from training.serializers import (
    CreateRunSerializer,
    ModelArtifactSerializer,
    ModelRegistrationSerializer,
    RegisterModelSerializer,
    RunMetricSerializer,
    TrainingRunSerializer,
)

MAX_METRIC_ROWS = 5000


def create_run(project: Project, data: dict[str, Any], user: Any) -> TrainingRun:
    """Queue a run of the requested kind through its service."""
    kind = data["kind"]
    common: dict[str, Any] = {
        "project": project,
        "base_artifact_id": data["base_artifact"],
        "user": user,
    }
    launch: dict[str, Any] = {
        "launcher": data.get("launcher"),
        "launcher_options": data.get("launcher_options"),
    }
    if kind == RunKind.REWARD:
        if data.get("dataset_export") is None:
            raise InvalidInputError(
                "dataset_export is required for a reward run.",
                extra={"fields": {"dataset_export": "required"}},
            )
        return create_reward_run(
            dataset_export_id=data["dataset_export"], config=data["config"], **common, **launch
        )
    if kind == RunKind.GENERATE:
        if launch["launcher"] not in (None, "", "inprocess") or launch["launcher_options"]:
            raise InvalidInputError(
                "A generation run executes in the worker's process: it takes no launcher.",
                extra={"fields": {"launcher": "training runs only"}},
            )
        return create_generation_run(
            config=data["config"],
            reward_artifact_id=data.get("reward_artifact"),
            compare_artifact_id=data.get("compare_artifact"),
            prompt_ids=data.get("prompt_ids"),
            **common,
        )
    return create_policy_run(
        kind=kind,
        config=data["config"],
        reward_artifact_id=data.get("reward_artifact"),
        dataset_export_id=data.get("dataset_export"),
        prompt_ids=data.get("prompt_ids"),
        **common,
        **launch,
    )


def _run(project_id: int, run_id: int) -> TrainingRun:
    run = project_run(project_id=project_id, run_id=run_id)
    if run is None:
        raise NotFoundError("No such training run in this project.")
    return run


class TrainingRunListView(APIView):
    permission_classes = [IsProjectMLEngineer]

    @extend_schema(
        operation_id="projects_training_runs_list",
        responses=inline_serializer(
            "TrainingRunList", {"results": TrainingRunSerializer(many=True)}
        ),
    )
    def get(self, request: Request, project_id: int) -> Response:
        runs = project_runs(project_id=project_id)[:200]
        return Response({"results": TrainingRunSerializer(runs, many=True).data})

    @extend_schema(request=CreateRunSerializer, responses={201: TrainingRunSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        data = CreateRunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = create_run(Project.objects.get(pk=project_id), data.validated_data, request.user)
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
        run = request_cancel(run=_run(project_id, run_id))
        return Response(TrainingRunSerializer(run).data)


class TrainingRunMetricsView(APIView):
    """The run's step metrics in step order (``?after=STEP`` for the rows after a step)."""

    permission_classes = [IsProjectMLEngineer]

    @extend_schema(
        operation_id="projects_training_runs_metrics_list",
        responses=inline_serializer("RunMetricList", {"results": RunMetricSerializer(many=True)}),
    )
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        run = _run(project_id, run_id)
        after = request.query_params.get("after", "")
        if after and not (after.isascii() and after.isdigit() and len(after) <= 18):
            raise InvalidInputError("after must be a step number.")
        rows = run_metrics(run=run, after=int(after) if after else None)[:MAX_METRIC_ROWS]
        return Response({"results": RunMetricSerializer(rows, many=True).data})


class ModelArtifactListView(APIView):
    """The registry as this project sees it: its own artifacts (made by Preflab or registered
    in place) and the shared base models. POST registers an existing model directory."""

    permission_classes = [IsProjectMLEngineer]

    @extend_schema(
        operation_id="projects_artifacts_list",
        responses=inline_serializer(
            "ModelArtifactList", {"results": ModelArtifactSerializer(many=True)}
        ),
    )
    def get(self, request: Request, project_id: int) -> Response:
        artifacts = project_artifacts(project_id=project_id)[:500]
        return Response({"results": ModelArtifactSerializer(artifacts, many=True).data})

    @extend_schema(
        operation_id="projects_artifacts_register",
        request=RegisterModelSerializer,
        responses={202: ModelRegistrationSerializer},
    )
    def post(self, request: Request, project_id: int) -> Response:
        """Check where the directory is (400 with the reason) and queue its validation (202
        with the pending registration; poll it for the outcome)."""
        data = RegisterModelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = Project.objects.filter(pk=project_id).first()
        if project is None:  # only a superuser gets here for a project that does not exist
            raise NotFoundError("No such project.")
        registration = request_registration(
            project=project,
            path=data.validated_data["path"],
            kind=data.validated_data["kind"],
            name=data.validated_data["name"],
            user=request.user,
        )
        return Response(
            ModelRegistrationSerializer(registration).data, status=status.HTTP_202_ACCEPTED
        )


class ModelRegistrationListView(APIView):
    """The project's latest model registrations, newest first."""

    permission_classes = [IsProjectMLEngineer]

    @extend_schema(
        operation_id="projects_artifact_registrations_list",
        responses=inline_serializer(
            "ModelRegistrationList", {"results": ModelRegistrationSerializer(many=True)}
        ),
    )
    def get(self, request: Request, project_id: int) -> Response:
        registrations = project_registrations(project_id=project_id)[:100]
        return Response({"results": ModelRegistrationSerializer(registrations, many=True).data})


class ModelRegistrationDetailView(APIView):
    """One registration: pending, registered (with its artifact) or failed (with the reason)."""

    permission_classes = [IsProjectMLEngineer]

    @extend_schema(responses=ModelRegistrationSerializer)
    def get(self, request: Request, project_id: int, registration_id: int) -> Response:
        registration = project_registrations(project_id=project_id).filter(pk=registration_id)
        found = registration.first()
        if found is None:
            raise NotFoundError("No such model registration in this project.")
        return Response(ModelRegistrationSerializer(found).data)
