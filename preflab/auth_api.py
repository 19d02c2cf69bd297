"""Session login for the SPA and token issue for scripts."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import issued_payload
from accounts.serializers import IssuedTokenSerializer
from accounts.services import issue_token
from annotation.project_admin import can_create_projects
from annotation.selectors import user_roles
from preflab.errors import InvalidInputError
from preflab.throttling import LoginLockout, LoginRate


class CredentialsSerializer(serializers.Serializer[dict[str, Any]]):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=1024, trim_whitespace=False)


class UserSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_superuser = serializers.BooleanField()
    roles = serializers.ListField(child=serializers.CharField())
    can_create_projects = serializers.BooleanField()


def user_payload(user: Any) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "is_superuser": bool(getattr(user, "is_superuser", False)),
        "roles": user_roles(user),
        "can_create_projects": can_create_projects(user),
    }


class InvalidCredentials(InvalidInputError):
    code = "invalid_credentials"


def _authenticate(request: Request) -> Any:
    """The user of the posted credentials, or ``InvalidCredentials``; refused with
    ``login_locked`` (429) while the username is locked out after repeated failures, whether
    or not it exists and whatever the password."""
    wait = LoginRate(request).wait()
    if wait is not None:
        raise Throttled(wait=wait)
    data = CredentialsSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    LoginLockout(data.validated_data["username"]).check()  # 429 login_locked, or 503
    # the backend (preflab.auth_backend) counts the attempt and the failure, as for the admin
    user = authenticate(
        request._request,
        username=data.validated_data["username"],
        password=data.validated_data["password"],
    )
    if user is None or not user.is_active:
        raise InvalidCredentials("Wrong username or password.")
    return user


@method_decorator(ensure_csrf_cookie, name="dispatch")
class CsrfView(APIView):
    """Sets the ``csrftoken`` cookie the SPA echoes in ``X-CSRFToken``."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(responses=inline_serializer("Csrf", {"csrfToken": serializers.CharField()}))
    def get(self, request: Request) -> Response:
        return Response({"csrfToken": get_token(request._request)})


@method_decorator(csrf_protect, name="dispatch")
class LoginView(APIView):
    """Session login (CSRF-protected, throttled, locked out after repeated failures)."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes: list[type] = []  # LoginRate, on every login path (see _authenticate)

    @extend_schema(request=CredentialsSerializer, responses=UserSerializer)
    def post(self, request: Request) -> Response:
        user = _authenticate(request)
        login(request._request, user)
        return Response(user_payload(user))


class LogoutView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses=UserSerializer)
    def get(self, request: Request) -> Response:
        return Response(user_payload(request.user))


class TokenView(APIView):
    """Exchange a username and password for a new API token (``Authorization: Token …``)."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes: list[type] = []  # LoginRate, on every login path (see _authenticate)

    @extend_schema(request=CredentialsSerializer, responses=IssuedTokenSerializer)
    def post(self, request: Request) -> Response:
        """A new token each time (named after the request's ``name``, if any), expiring after
        ``PREFLAB_TOKEN_TTL``; list and revoke them at ``/api/auth/tokens/``."""
        user = _authenticate(request)
        name = request.data.get("name") if isinstance(request.data, dict) else None
        issued = issue_token(user=user, name=name if isinstance(name, str) else "")
        return Response(issued_payload(issued))
