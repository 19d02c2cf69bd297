"""Platform views: health, the single-page app, and the worker ping for admins."""

from __future__ import annotations

import uuid
from functools import cache
from pathlib import Path
from typing import Any

from celery.result import AsyncResult
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.defaults import page_not_found
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from preflab.celery import app as celery_app
from preflab.errors import error_body
from preflab.health import check_broker, check_database
from preflab.tasks import ping


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, else 503 with the failing check."""
    database = check_database()
    broker = check_broker()
    healthy = database.ok and broker.ok
    body = {
        "status": "ok" if healthy else "unhealthy",
        "checks": {
            "database": {"ok": database.ok, "detail": database.detail, "ms": database.millis},
            "broker": {"ok": broker.ok, "detail": broker.detail, "ms": broker.millis},
        },
    }
    return JsonResponse(body, status=200 if healthy else 503)


@cache
def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: a path under /api/ that no route matches (an id that is no id, say
    ``/api/projects/NaN/``) answers like the API's own 404s, the rest as Django does."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return page_not_found(request, exception)


def _index_html(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


@never_cache
@ensure_csrf_cookie
def spa_index(request: HttpRequest, path: str = "") -> HttpResponse:
    """Serve the built single-page app; client-side routing handles the path."""
    index = Path(settings.FRONTEND_DIST) / "index.html"
    html = (
        _index_html(index)
        if not settings.DEBUG
        else (index.read_text(encoding="utf-8") if index.is_file() else None)
    )
    if html is None:
        return JsonResponse(
            error_body(
                "frontend_not_built",
                "The frontend is not built: run `make frontend` (or `make run`).",
            ),
            status=503,
        )
    return HttpResponse(html, content_type="text/html; charset=utf-8")


class WorkerPingView(APIView):
    """Enqueue the health task on a queue (staff only); poll its result by id."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer(
                "WorkerPingEnqueued",
                {"task_id": serializers.CharField(), "queue": serializers.CharField()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        queue = request.query_params.get("queue", "default")
        if queue not in {"default", "gpu"}:
            return Response(
                error_body("invalid", "queue must be 'default' or 'gpu'.", {"queue": queue}),
                status=400,
            )
        task_id = str(uuid.uuid4())
        ping.apply_async(task_id=task_id, queue=queue, routing_key=queue)
        return Response({"task_id": task_id, "queue": queue}, status=202)


class WorkerPingResultView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        responses=inline_serializer(
            "WorkerPingResult",
            {
                "task_id": serializers.CharField(),
                "state": serializers.CharField(),
                "result": serializers.JSONField(allow_null=True),
            },
        )
    )
    def get(self, request: Request, task_id: uuid.UUID) -> Response:
        result: AsyncResult[Any] = AsyncResult(str(task_id), app=celery_app)
        state = result.state
        payload = result.result if state == "SUCCESS" else None
        return Response({"task_id": str(task_id), "state": state, "result": payload})
