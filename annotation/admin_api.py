"""Project administration API: archive, members, invite links (project admins), and the
invite link's own page and accept (anyone holding the link)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import invites, members, project_admin
from annotation.models import Project, ProjectInvite
from annotation.permissions import IsProjectAdmin
from annotation.selectors import projects_for_user
from annotation.serializers import (
    AcceptInviteSerializer,
    AddMemberSerializer,
    CreateInviteSerializer,
    InviteSerializer,
    MemberSerializer,
    ProjectSerializer,
    RoleSerializer,
)


def _project(request: Request, project_id: int) -> Project:
    return projects_for_user(request.user).get(pk=project_id)


class ProjectArchiveView(APIView):
    """Archive: hidden from project lists, its queue leases nothing new (409 project_archived)."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(request=None, responses=ProjectSerializer)
    def post(self, request: Request, project_id: int) -> Response:
        project_admin.archive_project(project=Project.objects.get(pk=project_id))
        return Response(ProjectSerializer(_project(request, project_id)).data)


class ProjectUnarchiveView(APIView):
    permission_classes = [IsProjectAdmin]

    @extend_schema(request=None, responses=ProjectSerializer)
    def post(self, request: Request, project_id: int) -> Response:
        project_admin.unarchive_project(project=Project.objects.get(pk=project_id))
        return Response(ProjectSerializer(_project(request, project_id)).data)


class MemberListView(APIView):
    """Members with role, join time and activity (judgments, last judgment), one query.
    POST adds an existing user (``user``: username or email) or a new account."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        rows = members.members_of(project_id=project_id)
        return Response(MemberSerializer(rows, many=True).data)

    @extend_schema(request=AddMemberSerializer, responses={201: MemberSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        data = AddMemberSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        project = Project.objects.get(pk=project_id)
        if "user" in body:
            membership = members.add_member(
                project=project, user=members.find_user(body["user"]), role=body["role"]
            )
        else:
            membership = members.add_new_account(
                project=project,
                username=body["username"],
                password=body["password"],
                email=body.get("email", ""),
                role=body["role"],
            )
        row = members.member_row(project_id=project_id, user_id=membership.user_id)
        return Response(MemberSerializer(row).data, status=status.HTTP_201_CREATED)


class MemberDetailView(APIView):
    """PATCH changes a member's role; DELETE removes them (their live leases are released).
    The project's last admin can be neither demoted nor removed (409 last_project_admin)."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(request=RoleSerializer, responses=MemberSerializer)
    def patch(self, request: Request, project_id: int, user_id: int) -> Response:
        data = RoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        members.change_role(
            project=Project.objects.get(pk=project_id),
            user_id=user_id,
            role=data.validated_data["role"],
        )
        return Response(
            MemberSerializer(members.member_row(project_id=project_id, user_id=user_id)).data
        )

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, project_id: int, user_id: int) -> Response:
        members.remove_member(project=Project.objects.get(pk=project_id), user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def invite_payload(invite: ProjectInvite) -> dict[str, Any]:
    invite.state = invites.invite_state(invite)  # type: ignore[attr-defined]
    return dict(InviteSerializer(invite).data)


class InviteListView(APIView):
    """The project's invite links (state: active, used, expired, revoked); POST makes one
    and returns its token once (``token`` and ``path``)."""

    permission_classes = [IsProjectAdmin]

    @extend_schema(responses=InviteSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        return Response([invite_payload(i) for i in invites.invites_of(project_id=project_id)])

    @extend_schema(request=CreateInviteSerializer, responses={201: InviteSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        data = CreateInviteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = invites.create_invite(
            project=Project.objects.get(pk=project_id),
            role=data.validated_data["role"],
            by=request.user,
            ttl_hours=data.validated_data["expires_in_hours"],
        )
        body = invite_payload(issued.invite) | {
            "token": issued.token,
            "path": f"/invites/{issued.token}",
        }
        return Response(body, status=status.HTTP_201_CREATED)


class InviteDetailView(APIView):
    permission_classes = [IsProjectAdmin]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, project_id: int, invite_id: int) -> Response:
        invites.revoke_invite(project=Project.objects.get(pk=project_id), invite_id=invite_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


InviteInfo = inline_serializer(
    "InviteInfo",
    {
        "project": inline_serializer(
            "InviteProject", {"id": serializers.IntegerField(), "name": serializers.CharField()}
        ),
        "role": serializers.CharField(),
        "expires_at": serializers.DateTimeField(),
        "valid": serializers.BooleanField(),
        "reason": serializers.CharField(allow_null=True),
    },
)


class InviteTokenView(APIView):
    """What an invite link offers (anyone holding it): the project, the role, and whether it
    can still be used (``reason``: used, expired, revoked or archived when not)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=InviteInfo)
    def get(self, request: Request, token: str) -> Response:
        invite = invites.invite_by_token(token)
        state = invites.invite_state(invite)
        reason = None if state == "active" else state
        if reason is None and invite.project.archived_at is not None:
            reason = "archived"
        return Response(
            {
                "project": {"id": invite.project.pk, "name": invite.project.name},
                "role": invite.role,
                "expires_at": invite.expires_at,
                "valid": reason is None,
                "reason": reason,
            }
        )


@method_decorator(csrf_protect, name="dispatch")
class InviteAcceptView(APIView):
    """Join the project: a signed-in user joins as is; anyone else creates an account
    (``username``, ``password``, optional ``email``) and is signed in. One use only: a used,
    expired or revoked link answers 410."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=AcceptInviteSerializer,
        responses={
            201: inline_serializer(
                "InviteAccepted",
                {
                    "project_id": serializers.IntegerField(),
                    "role": serializers.CharField(),
                    "username": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request: Request, token: str) -> Response:
        signed_in = bool(request.user and request.user.is_authenticated)
        data = AcceptInviteSerializer(data=request.data if not signed_in else {})
        data.is_valid(raise_exception=True)
        membership = invites.accept_invite(
            token=token, user=request.user if signed_in else None, **data.validated_data
        )
        if not signed_in:
            login(request._request, membership.user)
        return Response(
            {
                "project_id": membership.project_id,
                "role": membership.role,
                "username": membership.user.get_username(),
            },
            status=status.HTTP_201_CREATED,
        )
