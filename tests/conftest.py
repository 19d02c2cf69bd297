"""Shared fixtures: servers (PostgreSQL, Redis), real Celery worker processes, users, projects.

Tests that need a server carry a marker (``postgres``, ``redis``, ``browser``). Without the
server they are skipped with the reason; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import pytest
from django.conf import settings
from django.db import connection

from annotation.models import Project
from annotation.roles import Role
from annotation.services import create_project, set_membership

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("PREFLAB_TEST_REDIS_URL", "")
CHROMIUM = "/usr/bin/chromium"


def redis_reachable(url: str) -> bool:
    if not url:
        return False
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 1):
            return True
    except OSError:
        return False


def _missing_server(item: pytest.Item) -> str | None:
    if item.get_closest_marker("postgres") and settings.DATABASES["default"]["ENGINE"] != (
        "django.db.backends.postgresql"
    ):
        return "needs PostgreSQL: set DATABASE_URL=postgres://…"
    if item.get_closest_marker("redis") and not redis_reachable(REDIS_URL):
        return "needs Redis: set PREFLAB_TEST_REDIS_URL=redis://…"
    if item.get_closest_marker("browser"):
        if not Path(CHROMIUM).exists():
            return f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
        if not (Path(settings.FRONTEND_DIST) / "index.html").exists():
            return "needs the built frontend (make frontend)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _missing_server(item)
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true and a server is missing: {reason}", pytrace=False)
    pytest.skip(reason)


# --- users and projects ----------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(django_user_model: Any) -> Any:
    def make(username: str, **extra: Any) -> Any:
        return django_user_model.objects.create_user(username=username, password=PASSWORD, **extra)

    return make


@pytest.fixture
def project(db: None) -> Project:
    return create_project(name="Helpfulness", description="Which answer helps more?")


@pytest.fixture
def other_project(db: None) -> Project:
    return create_project(name="Other team's project")


@pytest.fixture
def annotator(make_user: Any, project: Project) -> Any:
    user = make_user("ann")
    set_membership(project=project, user=user, role=Role.ANNOTATOR)
    return user


@pytest.fixture
def project_admin(make_user: Any, project: Project) -> Any:
    user = make_user("padmin")
    set_membership(project=project, user=user, role=Role.PROJECT_ADMIN)
    return user


@pytest.fixture
def ml_engineer(make_user: Any, project: Project) -> Any:
    user = make_user("mleng")
    set_membership(project=project, user=user, role=Role.ML_ENGINEER)
    return user


# --- real Celery worker processes -------------------------------------------------------------


def database_url_for_current_connection() -> str:
    """A DATABASE_URL for the database the tests use right now (the test database)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    user = quote(s.get("USER") or "")
    password = quote(s.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def start_worker(
    env: dict[str, str], queues: str = "default,gpu", log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``celery worker`` as a separate process with ``env``; wait until it is ready."""
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    log_path = log or Path(env.get("PREFLAB_VAR_DIR", str(settings.VAR_DIR))) / "worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handle = log_path.open("wb")
    proc = subprocess.Popen(
        [
            celery,
            "-A",
            "preflab",
            "worker",
            "-Q",
            queues,
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
        ],
        cwd=REPO,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log_path.read_text(errors='replace')}")
        if "ready." in log_path.read_text(errors="replace"):
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"worker not ready in 60 s:\n{log_path.read_text(errors='replace')}")


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def worker_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update({"DJANGO_DEBUG": "1", "DATABASE_URL": database_url_for_current_connection()})
    env.update(overrides)
    return env


@pytest.fixture
def celery_worker(transactional_db: None, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker on the broker the test process uses, reading the test database."""
    proc = start_worker(worker_env(), log=tmp_path / "worker.log")
    try:
        yield proc
    finally:
        stop_worker(proc)


# --- helpers of tests that break a server ------------------------------------------------


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own (no persistence), so that it can be killed and
    started again on the same port."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary, self.port = binary, port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(f"redis-server on port {self.port}", self._answers, timeout=10, interval=0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server on PATH")
    redis = PrivateRedis(binary, free_port())
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts with empty caches: throttle counters are per test, not per suite.

    Every test logs in from 127.0.0.1, so without this the login throttle (a rate per client
    address) carries over from earlier tests and refuses a later test's login with 429.
    """
    from django.core.cache import caches

    for alias in settings.CACHES:
        caches[alias].clear()
