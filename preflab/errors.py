"""Typed domain errors and the one DRF exception handler that renders every API error.

Every error body has the same shape: ``{"code": str, "message": str, "extra": dict}``.
Services raise :class:`DomainError` subclasses with a stable ``code``; views never build error
responses by hand.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import Http404
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A failure the caller can act on. Subclasses set ``code`` and ``status_code``."""

    code: ClassVar[str] = "domain_error"
    status_code: ClassVar[int] = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFoundError(DomainError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND


class ForbiddenError(DomainError):
    code = "permission_denied"
    status_code = status.HTTP_403_FORBIDDEN


class ConflictError(DomainError):
    code = "conflict"
    status_code = status.HTTP_409_CONFLICT


class InvalidInputError(DomainError):
    code = "invalid"
    status_code = status.HTTP_400_BAD_REQUEST


def error_body(code: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"code": code, "message": message, "extra": extra or {}}


def _first_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        inner = _first_message(value)
        return inner if key in {"non_field_errors", "detail"} else f"{key}: {inner}"
    return str(detail)


# A dependency that does not answer: the request may succeed in a moment (503, Retry-After).
_UNAVAILABLE: tuple[tuple[tuple[type[Exception], ...], str, str], ...] = (
    ((OperationalError, InterfaceError), "database_unavailable", "The database"),
    ((BrokerUnavailable,), "broker_unavailable", "The task queue"),  # a task not enqueued
    ((RedisConnectionError, RedisTimeoutError), "cache_unavailable", "The cache"),
)


# OperationalErrors that no retry will cure: the request itself is too large for the database.
_TOO_LARGE = ("too many sql variables", "too many terms", "expression tree is too large")


def _unavailable(exc: Exception) -> Response | None:
    if isinstance(exc, OperationalError) and any(m in str(exc).lower() for m in _TOO_LARGE):
        logger.info("request too large for the database: %s", exc)
        return Response(
            error_body("request_too_large", "The request names too many items at once."),
            status=status.HTTP_400_BAD_REQUEST,
        )
    for types, code, what in _UNAVAILABLE:
        if isinstance(exc, types):
            logger.exception(code.replace("_", " "))
            return Response(
                error_body(code, f"{what} is unavailable; retry in a few seconds."),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "5"},
            )
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: render any error as ``{"code", "message", "extra"}``."""
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.extra), status=exc.status_code)
    unavailable = _unavailable(exc)
    if unavailable is not None:
        return unavailable
    if isinstance(exc, (OverflowError, DataError)):
        # a number or text in the request that no column can hold (an id beyond 64 bits):
        # the client's mistake, not ours — whichever field carried it
        logger.info("value out of range: %s", exc)
        return Response(
            error_body("value_out_of_range", "A value in the request is out of range."),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DatabaseError):
        return None  # a real bug: let it surface as a 500 and be logged
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response

    extra: dict[str, Any] = {}
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        message = _first_message(exc.detail) or "Invalid input."
        extra["fields"] = (
            exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        )
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        message = str(exc.detail)
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            extra["retry_after_seconds"] = int(wait)
    response.data = error_body(str(code), message, extra)
    return response
