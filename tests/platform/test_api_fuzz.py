"""Schemathesis against our own OpenAPI schema, as each role.

Every operation of ``/api/schema/`` is called in-process through the WSGI app with cases that
Schemathesis generates (valid and invalid bodies and query strings), authenticated as each
role with a token, and with path parameters pinned to real ids of the permission matrix's
:class:`World` (this project's objects, the other project's, or a mix), so that handlers run
past their 404s. Checks: no 5xx; a documented status has a body that conforms to the schema;
an undocumented status is a 4xx with our error body ``{"code", "message", "extra"}``.

Each example runs in a savepoint that is rolled back, so every case sees the same World and
the run is deterministic (``derandomize=True``, no example database). ``on_commit`` callbacks
(training runs, rounds, exports, quality recomputation) never run inside the test transaction,
so those operations are exercised for real; the one handler that enqueues directly (the worker
ping) gets a stand-in task so no message is left in the broker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest
import schemathesis
from django.core.cache import cache as django_cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from accounts.services import issue_token
from tests.platform.test_permission_matrix import MATRIX, World

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "annotator", "ml_engineer", "project_admin", "superuser")
EXAMPLES_ALLOWED = 30  # per operation, for a role its permission row lets in
EXAMPLES_REFUSED = 2  # per operation, for a role that gets 403 (the path is short)
CSRF_SECRET = "f" * 32


@cache
def wsgi_app() -> WSGIHandler:
    return get_wsgi_application()


@cache
def load_schema() -> Any:
    return schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app())


def allowed_roles(path: str, method: str) -> frozenset[str]:
    """The MATRIX row of an OpenAPI path (``{name}``) and method."""
    for (route, row_method), roles in MATRIX.items():
        if row_method == method.lower() and re.sub(r"<\w+:(\w+)>", r"{\1}", "/" + route) == path:
            return roles
    raise AssertionError(f"{method} {path} has no row in the permission matrix")


def error_body_if_undocumented(ctx: Any, response: Any, case: Any) -> bool | None:
    """An undocumented status must be a 4xx carrying ``{"code", "message", "extra"}``."""
    if str(response.status_code) in case.operation.responses.status_codes:
        return None
    assert 400 <= response.status_code < 500, (
        f"undocumented status {response.status_code} for {case.operation.label}"
    )
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"code", "message", "extra"}, body
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["message"], str), body
    assert isinstance(body["extra"], dict), body
    return None


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    error_body_if_undocumented,
]


class StandInTask:
    """Replaces the ping task in the view: records the enqueue instead of writing a message."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def apply_async(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@pytest.fixture
def in_process_wsgi() -> Iterator[None]:
    """Calls through the WSGI handler must not close the test's connection (and transaction)
    at the end of a request: detach Django's per-request connection cleanup, as its test
    client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fresh_throttles() -> Iterator[None]:
    """Fuzzed logins spend the login throttle: start and leave with an empty cache."""
    django_cache.clear()
    yield
    django_cache.clear()


@pytest.fixture
def world(make_user: Any, django_user_model: Any, settings: Any, tmp_path: Any) -> World:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return World(make_user, django_user_model)


def id_variants(world: World) -> list[dict[str, Any]]:
    """Path parameters: this project's objects, the other project's, and a mix of both."""
    mine, theirs = world.ids["mine"], world.ids["theirs"]
    cross = theirs | {"project_id": mine["project_id"]}
    return [mine, theirs, cross]


def case_strategy(
    operation: Any, variants: list[dict[str, Any]], authorize: Callable[[Any], Any]
) -> st.SearchStrategy[Any]:
    names = [p.name for p in operation.path_parameters]
    strategies = [
        operation.as_strategy(mode, path_parameters={n: ids[n] for n in names})
        for ids in (variants if names else variants[:1])
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    return st.one_of(strategies).map(authorize)


def run_operation(
    operation: Any, strategy: st.SearchStrategy[Any], examples: int, statuses: list[int]
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        with transaction.atomic():  # every case sees the same World
            try:
                response = case.call(app=wsgi_app())
                statuses.append(response.status_code)
                case.validate_response(response, checks=CHECKS)
            finally:
                transaction.set_rollback(True)

    check()


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_within_its_schema(
    role: str,
    world: World,
    in_process_wsgi: None,
    fresh_throttles: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("preflab.views.ping", StandInTask())
    schema = load_schema()
    user = world.users[role]
    token = None if user is None else issue_token(user=user).key

    def authorize(case: Any) -> Any:
        # Generated cases carry random credentials of the schema's security schemes.
        cookies = {k: v for k, v in (case.cookies or {}).items() if k != "sessionid"}
        headers = {
            k: v
            for k, v in (case.headers or {}).items()
            if k.lower() not in ("authorization", "x-csrftoken")
        }
        # A CSRF cookie and its header, so that session login gets past the CSRF check.
        case.cookies = cookies | {"csrftoken": CSRF_SECRET}
        headers["X-CSRFToken"] = CSRF_SECRET
        if token is not None:
            headers["Authorization"] = f"Token {token}"
        case.headers = headers
        return case

    variants = id_variants(world)
    failures: list[str] = []
    locked_out: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30, "the schema lost its operations"
    for operation in operations:
        allowed = role in allowed_roles(operation.path, operation.method)
        examples = EXAMPLES_ALLOWED if allowed else EXAMPLES_REFUSED
        statuses: list[int] = []
        try:
            strategy = case_strategy(operation, variants, authorize)
            run_operation(operation, strategy, examples, statuses)
        except (Exception, BaseExceptionGroup) as exc:  # report every operation at once
            head = "\n".join(str(exc).splitlines()[:30])
            failures.append(f"--- {operation.label} as {role}:\n{head}")
        if allowed and statuses and all(code in (401, 403) for code in statuses):
            locked_out.append(f"{operation.label}: {sorted(set(statuses))}")
    assert failures == [], "\n\n".join(failures)
    # The fuzzing reached the handlers: an allowed role got past authorization everywhere.
    assert locked_out == [], f"{role} never got past authorization: {locked_out}"
