"""The built frontend is served by Django; the OpenAPI schema and docs are published."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def built_frontend() -> None:
    if not (settings.FRONTEND_DIST / "index.html").exists():
        pytest.fail("frontend/dist is missing: the test command builds it (make frontend)")


@pytest.mark.parametrize("path", ["/", "/projects", "/projects/12/annotate", "/login"])
def test_spa_index_is_served_for_client_routes(
    client: Client, built_frontend: None, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<div id="root">' in html
    assert "<script>" not in html  # no inline script: the CSP forbids it
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_hashed_asset_is_served_with_long_cache(client: Client, built_frontend: None) -> None:
    html = client.get("/").content.decode()
    match = re.search(r'src="(/static/assets/index-[\w-]+\.js)"', html)
    assert match, html
    asset = client.get(match.group(1))
    assert asset.status_code == 200
    body = b"".join(asset.streaming_content) if asset.streaming else asset.content
    assert len(body) > 1000
    assert "immutable" in asset.get("Cache-Control", "")


def test_openapi_schema_and_docs(client: Client, make_user: object) -> None:
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    body = schema.json()
    assert body["openapi"].startswith("3.")
    assert "/api/projects/" in body["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_openapi_schema_validates_without_warnings(tmp_path: object) -> None:
    from pathlib import Path

    from django.core.management import call_command

    target = Path(str(tmp_path)) / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/projects/{project_id}/exports/" in target.read_text()
