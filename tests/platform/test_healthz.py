"""`/healthz` checks the database and the broker; a stopped broker is unhealthy."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_redis() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A Redis server of this test's own, so that it can be stopped."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server on PATH")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield proc, port
    proc.kill()
    proc.wait()


def test_healthz_is_ok_with_database_and_broker(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.redis
def test_healthz_reports_a_stopped_broker_as_unhealthy(
    client: Client, private_redis: tuple[subprocess.Popen[bytes], int]
) -> None:
    proc, port = private_redis
    url = f"redis://127.0.0.1:{port}/0"
    with override_settings(BROKER_IS_FILESYSTEM=False, CELERY_BROKER_URL=url):
        assert client.get("/healthz").status_code == 200
        proc.kill()
        proc.wait()
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_healthz_reports_a_missing_filesystem_broker_as_unhealthy(
    client: Client, tmp_path: object
) -> None:
    options = {"data_folder_in": "/nonexistent/in", "data_folder_out": "/nonexistent/out"}
    with override_settings(BROKER_IS_FILESYSTEM=True, CELERY_BROKER_TRANSPORT_OPTIONS=options):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert "broker folder missing" in response.json()["checks"]["broker"]["detail"]
