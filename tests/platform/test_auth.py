"""Session login, CSRF, token auth, roles and the error body shape."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def csrf_client() -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    response = client.get("/api/auth/csrf/")
    assert response.status_code == 200
    return client, response.cookies["csrftoken"].value


def test_login_sets_a_session_and_me_reports_roles(annotator: Any) -> None:
    client, token = csrf_client()
    response = client.post(
        "/api/auth/login/",
        {"username": "ann", "password": PASSWORD},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200, response.content
    assert response.json()["username"] == "ann"
    me = client.get("/api/auth/me/")
    assert me.status_code == 200
    assert me.json()["roles"] == ["annotator"]


def test_login_with_a_wrong_password_is_a_400_with_code(annotator: Any) -> None:
    client, token = csrf_client()
    response = client.post(
        "/api/auth/login/",
        {"username": "ann", "password": "nope"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_credentials"
    assert body["message"] == "Wrong username or password."
    assert body["extra"] == {}


def test_login_without_csrf_token_is_refused(annotator: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/auth/login/",
        {"username": "ann", "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 403


def test_login_with_missing_field_names_the_field() -> None:
    client, token = csrf_client()
    response = client.post(
        "/api/auth/login/",
        {"username": "x"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "password" in body["extra"]["fields"]


def test_session_write_without_csrf_is_refused(annotator: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    response = client.post("/api/auth/logout/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "CSRF" in response.json()["message"]


@pytest.mark.parametrize("path", ["/api/auth/me/", "/api/projects/"])
def test_anonymous_requests_to_protected_endpoints_are_refused(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


def test_token_auth_works_for_scripts(client: Client, annotator: Any) -> None:
    response = client.post(
        "/api/auth/token/",
        {"username": "ann", "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 200
    token = response.json()["token"]
    fresh = Client()
    me = fresh.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert me.status_code == 200
    assert me.json()["username"] == "ann"
    bad = Client().get("/api/auth/me/", HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.status_code in (401, 403)
    assert bad.json()["code"] == "authentication_failed"


def test_logout_ends_the_session(client: Client, annotator: Any) -> None:
    client.force_login(annotator)
    assert client.post("/api/auth/logout/").status_code == 204
    assert client.get("/api/auth/me/").status_code in (401, 403)


def test_worker_ping_is_refused_to_non_staff(client: Client, annotator: Any) -> None:
    client.force_login(annotator)
    response = client.post("/api/system/worker-ping/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_unknown_api_path_is_a_json_404(client: Client, annotator: Any) -> None:
    client.force_login(annotator)
    response = client.get("/api/projects/999999/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
