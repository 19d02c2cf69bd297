"""RLHF rounds and model lineage API (ML engineers of the project)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Project
from annotation.permissions import IsProjectMLEngineer
from preflab.errors import NotFoundError
from training import rounds
from training.models import RLHFRound
from training.round_config import default_round_config
from training.round_selectors import (
    artifact_lineage,
    lineage_artifact,
    project_round,
    project_rounds,
    round_win_rates,
)
from training.serializers import LineageSerializer, RoundSerializer, StartRoundSerializer


def _round(project_id: int, round_id: int) -> RLHFRound:
    r = project_round(project_id=project_id, round_id=round_id)
    if r is None:
        raise NotFoundError("No such round in this project.")
    return r


class RoundListView(APIView):
    permission_classes = [IsProjectMLEngineer]

    @extend_schema(
        operation_id="projects_rounds_list",
        responses=inline_serializer("RoundList", {"results": RoundSerializer(many=True)}),
    )
    def get(self, request: Request, project_id: int) -> Response:
        rows = list(project_rounds(project_id=project_id)[:200])
        context = {"win_rates": round_win_rates(rows)}
        return Response({"results": RoundSerializer(rows, many=True, context=context).data})

    @extend_schema(request=StartRoundSerializer, responses={201: RoundSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        data = StartRoundSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        r = rounds.start_round(
            project=Project.objects.get(pk=project_id),
            config=data.validated_data["config"],
            base_policy_id=data.validated_data.get("base_policy"),
            user=request.user,
        )
        return Response(RoundSerializer(r).data, status=status.HTTP_201_CREATED)


class RoundDefaultsView(APIView):
    """What the console's start form is filled with."""

    permission_classes = [IsProjectMLEngineer]

    @extend_schema(responses=StartRoundSerializer)
    def get(self, request: Request, project_id: int) -> Response:
        project = Project.objects.get(pk=project_id)
        base = rounds.next_base_policy(project)
        return Response(
            {
                "base_policy": base.pk if base is not None else None,
                "config": default_round_config(project),
            }
        )


class RoundDetailView(APIView):
    permission_classes = [IsProjectMLEngineer]

    @extend_schema(responses=RoundSerializer)
    def get(self, request: Request, project_id: int, round_id: int) -> Response:
        return Response(RoundSerializer(_round(project_id, round_id)).data)


class RoundCancelView(APIView):
    permission_classes = [IsProjectMLEngineer]

    @extend_schema(request=None, responses=RoundSerializer)
    def post(self, request: Request, project_id: int, round_id: int) -> Response:
        r = rounds.cancel_round(r=_round(project_id, round_id))
        return Response(RoundSerializer(r).data)


class RoundRetryView(APIView):
    permission_classes = [IsProjectMLEngineer]

    @extend_schema(request=None, responses=RoundSerializer)
    def post(self, request: Request, project_id: int, round_id: int) -> Response:
        r = rounds.retry_round(r=_round(project_id, round_id))
        return Response(RoundSerializer(r).data)


class OverrideSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the round may go on.")


class RoundOverrideView(APIView):
    """Publish anyway: let a round that a gate stopped go on, with a recorded reason."""

    permission_classes = [IsProjectMLEngineer]

    @extend_schema(request=OverrideSerializer, responses=RoundSerializer)
    def post(self, request: Request, project_id: int, round_id: int) -> Response:
        r = _round(project_id, round_id)  # another project's round: 404 before the body
        data = OverrideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        r = rounds.override_gate(r=r, reason=data.validated_data["reason"], user=request.user)
        return Response(RoundSerializer(r).data)


class ArtifactLineageView(APIView):
    """Where a model came from: ancestors, run, export, judgments, round."""

    permission_classes = [IsProjectMLEngineer]

    @extend_schema(responses=LineageSerializer)
    def get(self, request: Request, project_id: int, artifact_id: int) -> Response:
        artifact = lineage_artifact(project_id=project_id, artifact_id=artifact_id)
        if artifact is None:
            raise NotFoundError("No such model in this project.")
        return Response(LineageSerializer(artifact_lineage(artifact)).data)
