"""The caller's own API tokens: list, create, revoke one, and log out everywhere."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import logout
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import tokens_of
from accounts.serializers import (
    ApiTokenListSerializer,
    ApiTokenSerializer,
    IssuedTokenSerializer,
    NewTokenSerializer,
)
from accounts.services import IssuedToken, issue_token, revoke_all, revoke_token


def issued_payload(issued: IssuedToken) -> dict[str, Any]:
    return {**ApiTokenSerializer(issued.token).data, "token": issued.key}


class TokenListView(APIView):
    """Your API tokens (GET, newest first) and a new one (POST: its secret is shown once)."""

    @extend_schema(responses=ApiTokenListSerializer)
    def get(self, request: Request) -> Response:
        rows = tokens_of(user=request.user)
        return Response({"results": ApiTokenSerializer(rows, many=True).data})

    @extend_schema(request=NewTokenSerializer, responses={201: IssuedTokenSerializer})
    def post(self, request: Request) -> Response:
        data = NewTokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = issue_token(user=request.user, name=data.validated_data["name"])
        return Response(issued_payload(issued), status=status.HTTP_201_CREATED)


class TokenDetailView(APIView):
    """Revoke one of your tokens (another user's is a 404)."""

    @extend_schema(responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        revoke_token(user=request.user, token_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """Revoke every token of yours and end all your sessions, this one included."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        revoke_all(user=request.user, sessions=True)
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
