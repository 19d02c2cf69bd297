"""Hardening: login lock-out, the per-user API rate limit, CSRF only for session writes, and
production security settings.

Already covered elsewhere (not repeated here): ``check --deploy`` passes
(tests/platform/test_settings.py), the SPA index carries the CSP and no inline script
(tests/platform/test_spa_and_schema.py), a session write without a CSRF token is refused
(tests/platform/test_auth.py), an import over ``PREFLAB_MAX_IMPORT_BYTES`` is a 413 with nothing
imported (tests/annotation/test_import.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from accounts.services import issue_token
from annotation.models import Project
from preflab.throttling import LoginLockout, parse_rate, shared_cache
from tests.conftest import PASSWORD
from tests.platform.test_settings import PRODUCTION_KEY, run_manage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache(settings: Any) -> Iterator[None]:
    """Counters live in the cache: start and leave with an empty one (each test stays below
    the login rate throttle, 20/min per client)."""
    settings.PREFLAB_LOGIN_LOCKOUT_FAILURES = 3
    settings.PREFLAB_LOGIN_LOCKOUT_SECONDS = 900
    cache.clear()
    shared_cache().clear()
    yield
    cache.clear()
    shared_cache().clear()


def token_login(username: str, password: str) -> Any:
    return Client().post(
        "/api/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
    )


def session_login(username: str, password: str) -> Any:
    client = Client(enforce_csrf_checks=True)
    csrf = client.get("/api/auth/csrf/").cookies["csrftoken"].value
    return client.post(
        "/api/auth/login/",
        {"username": username, "password": password},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf,
    )


def assert_locked(response: Any) -> None:
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["code"] == "login_locked"
    assert body["message"].startswith("Too many failed logins")
    wait = body["extra"]["retry_after_seconds"]
    assert 0 < wait <= 900
    assert int(response["Retry-After"]) == wait


# --- login lock-out ----------------------------------------------------------------------------


@pytest.mark.parametrize("login", [token_login, session_login], ids=["token", "session"])
def test_repeated_failures_lock_the_account_even_for_the_right_password(
    annotator: Any, login: Any
) -> None:
    for _ in range(3):
        assert login("ann", "wrong").json()["code"] == "invalid_credentials"
    assert_locked(login("ann", "wrong"))
    assert_locked(login("ann", PASSWORD))
    # the lock is per username: others are not affected
    assert token_login("someone-else", "wrong").json()["code"] == "invalid_credentials"


def test_the_lock_covers_both_endpoints_and_case_variants(annotator: Any) -> None:
    for _ in range(3):
        token_login("ann", "wrong")
    assert_locked(session_login("ann", PASSWORD))
    assert_locked(token_login("ANN", PASSWORD))


def test_a_success_resets_the_count(annotator: Any) -> None:
    for _ in range(2):
        assert token_login("ann", "wrong").status_code == 400
    assert token_login("ann", PASSWORD).status_code == 200
    for _ in range(2):
        assert token_login("ann", "wrong").status_code == 400
    assert token_login("ann", PASSWORD).status_code == 200


def test_an_unknown_username_is_answered_exactly_like_a_known_one(annotator: Any) -> None:
    def answers(username: str) -> list[tuple[int, dict[str, Any]]]:
        out = []
        for _ in range(4):
            response = token_login(username, "wrong")
            body = response.json()
            body["extra"].pop("retry_after_seconds", None)  # seconds may tick between the two
            out.append((response.status_code, body))
        return out

    known, unknown = answers("ann"), answers("nobody-by-this-name")
    assert known == unknown
    assert [status for status, _ in known] == [400, 400, 400, 429]


def test_the_lock_expires_and_can_be_reset(annotator: Any, settings: Any) -> None:
    settings.PREFLAB_LOGIN_LOCKOUT_SECONDS = 1
    for _ in range(3):
        token_login("ann", "wrong")
    assert token_login("ann", PASSWORD).status_code == 429
    time.sleep(1.1)
    assert token_login("ann", PASSWORD).status_code == 200
    settings.PREFLAB_LOGIN_LOCKOUT_SECONDS = 900
    for _ in range(3):
        token_login("ann", "wrong")
    assert token_login("ann", PASSWORD).status_code == 429
    LoginLockout("ann").reset()
    assert token_login("ann", PASSWORD).status_code == 200


def test_lockout_can_be_turned_off(annotator: Any, settings: Any) -> None:
    settings.PREFLAB_LOGIN_LOCKOUT_FAILURES = 0
    for _ in range(6):
        assert token_login("ann", "wrong").status_code == 400
    assert token_login("ann", PASSWORD).status_code == 200


# --- per-user API rate limit -------------------------------------------------------------------


def test_api_rate_limit_is_per_user_with_retry_after_and_our_body(
    make_user: Any, settings: Any
) -> None:
    settings.PREFLAB_API_RATE = "3/min"
    first, second = Client(), Client()
    first.force_login(make_user("first"))
    second.force_login(make_user("second"))
    for _ in range(3):
        assert first.get("/api/auth/me/").status_code == 200
    refused = first.get("/api/auth/me/")
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "throttled"
    assert body["message"].startswith("Request was throttled.")
    wait = body["extra"]["retry_after_seconds"]
    assert 1 <= wait <= 61
    assert int(refused["Retry-After"]) == wait
    # another user has a budget of their own
    assert second.get("/api/auth/me/").status_code == 200


def test_api_rate_limit_applies_to_token_requests_and_can_be_turned_off(
    make_user: Any, settings: Any
) -> None:
    user = make_user("scripted")
    auth = f"Token {issue_token(user=user).key}"
    settings.PREFLAB_API_RATE = "2/min"
    assert [
        Client().get("/api/auth/me/", HTTP_AUTHORIZATION=auth).status_code for _ in range(3)
    ] == [
        200,
        200,
        429,
    ]
    settings.PREFLAB_API_RATE = ""
    assert Client().get("/api/auth/me/", HTTP_AUTHORIZATION=auth).status_code == 200


def test_default_api_rate_is_generous_and_parses() -> None:
    from django.conf import settings

    count, period = parse_rate(settings.PREFLAB_API_RATE)
    assert count / period >= 50  # simulators and benchmarks must not be throttled
    assert parse_rate("10/s") == (10, 1)
    assert parse_rate("100/hour") == (100, 3600)
    with pytest.raises(ValueError):
        parse_rate("lots")


# --- CSRF: session writes need it, token writes do not ----------------------------------------


def test_csrf_is_required_for_session_writes_but_not_for_token_writes(
    project: Project, annotator: Any
) -> None:
    path = f"/api/projects/{project.id}/queue/next/"
    session = Client(enforce_csrf_checks=True)
    session.force_login(annotator)
    refused = session.post(path, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["message"]

    token = issue_token(user=annotator).key
    scripted = Client(enforce_csrf_checks=True)
    accepted = scripted.post(
        path, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert accepted.status_code == 200, accepted.content
    assert "item" in accepted.json()


# --- production settings -----------------------------------------------------------------------


def test_production_settings_secure_cookies_hsts_and_limits(tmp_path: Path) -> None:
    script = (
        "import json; from django.conf import settings as s; print(json.dumps({k: getattr(s, k)"
        " for k in ['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY',"
        " 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_SSL_REDIRECT',"
        " 'SECURE_CONTENT_TYPE_NOSNIFF', 'X_FRAME_OPTIONS', 'DEBUG', 'PREFLAB_API_RATE',"
        " 'PREFLAB_LOGIN_LOCKOUT_FAILURES', 'PREFLAB_LOGIN_LOCKOUT_SECONDS']}))"
    )
    result = run_manage(
        "shell",
        "-v",
        "0",
        "-c",
        script,
        env={
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": PRODUCTION_KEY,
            "DJANGO_ALLOWED_HOSTS": "preflab.example.org",
            "PREFLAB_VAR_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
        "DEBUG": False,
        "PREFLAB_API_RATE": "6000/min",
        "PREFLAB_LOGIN_LOCKOUT_FAILURES": 5,
        "PREFLAB_LOGIN_LOCKOUT_SECONDS": 900,
    }


# --- the cache down --------------------------------------------------------------------------


def test_with_the_cache_down_api_requests_pass_and_login_answers_503(
    annotator: Any, project: Project, settings: Any
) -> None:
    """The rate limit fails open (PostgreSQL still answers; annotators keep working); login
    fails closed, because an unchecked lock-out would allow unlimited password guessing."""
    settings.PREFLAB_API_RATE = "1/min"
    dead_cache = {  # nothing listens on port 1
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    with override_settings(CACHES=dead_cache):  # (restored before the cache is cleared)
        client = Client()
        client.force_login(annotator)
        for _ in range(3):  # over the rate: it is not applied while it cannot be counted
            assert client.get("/api/auth/me/").status_code == 200
        leased = client.post(f"/api/projects/{project.id}/queue/next/")
        assert leased.status_code == 200, leased.content

        refused = token_login("ann", PASSWORD)
        assert refused.status_code == 503, refused.content
        assert refused.json()["code"] == "cache_unavailable"
        assert refused["Retry-After"] == "5"


@pytest.mark.redis
def test_lockout_and_rate_limit_work_on_redis_shared_by_every_process(
    make_user: Any, settings: Any
) -> None:
    """Production keeps the counters in Redis (shared by all gunicorn workers): the same
    checks against a real Redis. Names are unique, so nothing needs clearing afterwards."""
    from tests.conftest import REDIS_URL

    suffix = uuid.uuid4().hex[:8]
    user = make_user(f"redis-{suffix}")
    auth = f"Token {issue_token(user=user).key}"
    settings.PREFLAB_API_RATE = "2/min"
    shared = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"test-{suffix}",
        }
    }
    with override_settings(CACHES=shared):
        for _ in range(3):
            assert token_login(user.username, "wrong").json()["code"] == "invalid_credentials"
        assert_locked(token_login(user.username, PASSWORD))
        LoginLockout(user.username).reset()
        assert token_login(user.username, PASSWORD).status_code == 200

        # five requests within a second span at most two windows of two: one must be refused
        statuses = [
            Client().get("/api/auth/me/", HTTP_AUTHORIZATION=auth).status_code for _ in range(5)
        ]
        assert statuses[0] == 200 and 429 in statuses, statuses


# --- every login path ----------------------------------------------------------------------------


def admin_login(username: str, password: str) -> Any:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/admin/login/")
    csrf = page.cookies["csrftoken"].value
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "csrfmiddlewaretoken": csrf},
    )
    response.logged_in = response.status_code == 302 and "_auth_user_id" in client.session
    return response


def test_the_admin_login_passes_the_same_lockout(make_user: Any) -> None:
    staff = make_user("staffer", is_staff=True, is_superuser=True)
    assert admin_login(staff.username, PASSWORD).logged_in
    for _ in range(3):
        assert not admin_login(staff.username, "wrong").logged_in
    # locked: the right password does not get in through the admin either …
    refused = admin_login(staff.username, PASSWORD)
    assert not refused.logged_in and refused.status_code == 200
    # … and the API sees the failures the admin counted
    assert_locked(token_login(staff.username, PASSWORD))
    LoginLockout(staff.username).reset()
    assert admin_login(staff.username, PASSWORD).logged_in


def test_the_login_rate_counts_every_path_per_client(make_user: Any, settings: Any) -> None:
    settings.PREFLAB_LOGIN_RATE = "4/day"  # a window no test run straddles
    settings.PREFLAB_LOGIN_LOCKOUT_FAILURES = 0  # the rate alone
    staff = make_user("rated", is_staff=True, is_superuser=True)
    assert not admin_login("nobody-1", "x").logged_in
    assert not admin_login("nobody-2", "x").logged_in
    assert token_login("nobody-3", "x").status_code == 400
    assert session_login("nobody-4", "x").status_code == 400
    refused = token_login(staff.username, PASSWORD)  # the fifth attempt from this client
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    assert not admin_login(staff.username, PASSWORD).logged_in  # the admin is closed too


def test_a_client_supplied_forwarded_for_does_not_escape_the_login_rate(
    settings: Any,
) -> None:
    settings.PREFLAB_LOGIN_RATE = "3/day"  # a window no test run straddles
    settings.PREFLAB_LOGIN_LOCKOUT_FAILURES = 0

    def attempt(forwarded: str) -> int:
        return (
            Client()
            .post(
                "/api/auth/token/",
                {"username": f"u-{forwarded}", "password": "x"},
                content_type="application/json",
                HTTP_X_FORWARDED_FOR=forwarded,
            )
            .status_code
        )

    assert [attempt(f"10.0.0.{i}") for i in range(5)] == [400, 400, 400, 429, 429]


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(settings: Any) -> None:
    settings.PREFLAB_LOGIN_RATE = "2/day"  # a window no test run straddles
    settings.PREFLAB_LOGIN_LOCKOUT_FAILURES = 0
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    def attempt(forwarded: str) -> int:
        return (
            Client()
            .post(
                "/api/auth/token/",
                {"username": "someone", "password": "x"},
                content_type="application/json",
                HTTP_X_FORWARDED_FOR=forwarded,
            )
            .status_code
        )

    # one proxy: the last address of the header is the client it saw
    assert [attempt("10.0.0.1") for _ in range(3)] == [400, 400, 429]
    assert attempt("203.0.113.9, 10.0.0.2") == 400  # another client, its own count


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_lockout_holds_whichever_web_worker_answers(make_user: Any, tmp_path: Path) -> None:
    """``make run``'s server shape: gunicorn with two workers on the embedded default cache
    (no Redis). Every attempt is a new connection, so the workers share the attempts; with
    a per-process cache each would need its own three failures before refusing, and the
    right password would still get in through the other one."""
    import http.client
    import subprocess
    import sys

    from tests.conftest import free_port, wait_for, worker_env

    user = make_user("two-workers")
    port = free_port()
    env = worker_env(
        PREFLAB_LOGIN_LOCKOUT_FAILURES="3",
        PREFLAB_VAR_DIR=str(tmp_path / "var"),
        PREFLAB_API_RATE="",
    )
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "preflab.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def token(password: str) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            body = json.dumps({"username": user.username, "password": password})
            conn.request(
                "POST",
                "/api/auth/token/",
                body=body,
                headers={"Content-Type": "application/json", "Connection": "close"},
            )
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    def up() -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/auth/csrf/")
            return conn.getresponse().status == 200
        except OSError:
            return False

    try:
        wait_for("gunicorn with two workers", up, timeout=60, interval=0.2)
        assert [token("wrong")[0] for _ in range(3)] == [400, 400, 400]
        answers = [token(PASSWORD) for _ in range(8)]
        assert all(status == 429 for status, _ in answers), answers
        assert {body["code"] for _, body in answers} == {"login_locked"}
    finally:
        server.terminate()
        server.wait(timeout=20)
