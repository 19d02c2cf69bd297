"""`/healthz` checks the database and the broker; a stopped broker is unhealthy."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from tests.conftest import PrivateRedis

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_with_database_and_broker(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.redis
def test_healthz_reports_a_stopped_broker_as_unhealthy(
    client: Client, private_redis: PrivateRedis
) -> None:
    with override_settings(BROKER_IS_FILESYSTEM=False, CELERY_BROKER_URL=private_redis.url):
        assert client.get("/healthz").status_code == 200
        private_redis.kill()
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
