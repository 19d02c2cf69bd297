"""`/api/projects/`: members see their projects, with their role; nobody else's."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from annotation.models import Project

pytestmark = pytest.mark.django_db


def test_member_sees_own_projects_with_role(
    client: Client, annotator: Any, project: Project, other_project: Project
) -> None:
    client.force_login(annotator)
    body = client.get("/api/projects/").json()
    assert body["count"] == 1
    assert body["results"][0]["id"] == project.id
    assert body["results"][0]["role"] == "annotator"


def test_project_of_another_team_is_not_reachable_by_id(
    client: Client, annotator: Any, other_project: Project
) -> None:
    client.force_login(annotator)
    assert client.get(f"/api/projects/{other_project.id}/").status_code == 404


def test_superuser_sees_every_project(
    client: Client, make_user: Any, project: Project, other_project: Project
) -> None:
    root = make_user("root", is_superuser=True, is_staff=True)
    client.force_login(root)
    ids = {row["id"] for row in client.get("/api/projects/").json()["results"]}
    assert ids == {project.id, other_project.id}


def test_user_without_membership_sees_an_empty_list(
    client: Client, make_user: Any, project: Project
) -> None:
    client.force_login(make_user("loner"))
    assert client.get("/api/projects/").json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }
