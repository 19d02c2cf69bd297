"""The queue over HTTP: payloads, roles, idempotent submit, query counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotation.models import Judgment, Project
from annotation.roles import Role
from annotation.services import set_membership
from tests.annotation.factories import seed_pairs

pytestmark = pytest.mark.django_db

SUBMIT = {"choice": "right", "strength": 4, "rationale": "clearer", "time_taken_ms": 4000}


def next_item(client: Client, project: Project, **body: Any) -> dict[str, Any]:
    response = client.post(
        f"/api/projects/{project.id}/queue/next/", body, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return dict(response.json())


def submit(client: Client, project: Project, assignment_id: int, body: dict[str, Any]) -> Any:
    return client.post(
        f"/api/projects/{project.id}/assignments/{assignment_id}/submit/",
        body,
        content_type="application/json",
    )


def test_next_returns_what_the_page_needs_and_nothing_about_others(
    client: Client, project: Project, annotator: Any
) -> None:
    seed_pairs(project, 2)
    client.force_login(annotator)
    item = next_item(client, project)["item"]
    assert set(item) == {"assignment_id", "expires_at", "messages", "left", "right", "scheme"}
    assert item["messages"][0]["role"] == "user"
    assert item["left"]["content"] != item["right"]["content"]
    assert set(item["left"]) == {"content"}
    assert item["scheme"] == {
        "allow_tie": True,
        "allow_both_bad": True,
        "strength_scale": True,
        "rationale_mode": "optional",
    }


def test_submit_then_retry_returns_the_same_judgment(
    client: Client, project: Project, annotator: Any
) -> None:
    seed_pairs(project, 2)
    client.force_login(annotator)
    item = next_item(client, project)["item"]
    first = submit(client, project, item["assignment_id"], SUBMIT)
    assert first.status_code == 201
    assert first.json()["choice"] == "right"
    retry = submit(client, project, item["assignment_id"], SUBMIT)
    assert retry.status_code == 200
    assert retry.json()["id"] == first.json()["id"]
    assert Judgment.objects.count() == 1


def test_bad_submit_names_the_field(client: Client, project: Project, annotator: Any) -> None:
    seed_pairs(project, 1)
    client.force_login(annotator)
    item = next_item(client, project)["item"]
    response = submit(client, project, item["assignment_id"], {"choice": "left"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_judgment"
    assert "strength" in response.json()["extra"]["fields"]
    response = submit(client, project, item["assignment_id"], {"choice": "up", "strength": 9})
    assert response.status_code == 400
    assert set(response.json()["extra"]["fields"]) == {"choice", "strength"}


def test_another_annotators_lease_is_not_found(
    client: Client, project: Project, annotator: Any, make_user: Any
) -> None:
    seed_pairs(project, 1)
    client.force_login(annotator)
    item = next_item(client, project)["item"]
    intruder = make_user("intruder")
    set_membership(project=project, user=intruder, role=Role.ANNOTATOR)
    other = Client()
    other.force_login(intruder)
    response = submit(other, project, item["assignment_id"], SUBMIT)
    assert response.status_code == 404
    assert Judgment.objects.count() == 0


@pytest.mark.parametrize("role_fixture", ["project_admin", "ml_engineer"])
def test_queue_is_refused_to_non_annotators(
    client: Client, project: Project, role_fixture: str, request: pytest.FixtureRequest
) -> None:
    seed_pairs(project, 1)
    client.force_login(request.getfixturevalue(role_fixture))
    response = client.post(
        f"/api/projects/{project.id}/queue/next/", {}, content_type="application/json"
    )
    assert response.status_code == 403


def test_annotator_of_another_project_is_refused(
    client: Client, project: Project, other_project: Project, make_user: Any
) -> None:
    seed_pairs(project, 1)
    outsider = make_user("outsider")
    set_membership(project=other_project, user=outsider, role=Role.ANNOTATOR)
    client.force_login(outsider)
    assert (
        client.post(
            f"/api/projects/{project.id}/queue/next/", {}, content_type="application/json"
        ).status_code
        == 403
    )
    assert client.get(f"/api/projects/{project.id}/progress/").status_code == 403


def test_anonymous_is_refused(client: Client, project: Project) -> None:
    response = client.post(
        f"/api/projects/{project.id}/queue/next/", {}, content_type="application/json"
    )
    assert response.status_code in (401, 403)


def test_empty_queue_returns_null_item(client: Client, project: Project, annotator: Any) -> None:
    client.force_login(annotator)
    assert next_item(client, project) == {"item": None}


def test_skip_and_release(client: Client, project: Project, annotator: Any) -> None:
    seed_pairs(project, 2)
    client.force_login(annotator)
    item = next_item(client, project)["item"]
    base = f"/api/projects/{project.id}/assignments/{item['assignment_id']}"
    assert client.post(f"{base}/release/").status_code == 204
    assert client.post(f"{base}/release/").status_code == 404
    item = next_item(client, project)["item"]
    base = f"/api/projects/{project.id}/assignments/{item['assignment_id']}"
    skip = client.post(f"{base}/skip/", {"reason": "not English"}, content_type="application/json")
    assert skip.status_code == 204
    assert submit(client, project, item["assignment_id"], SUBMIT).status_code == 409


def test_progress(client: Client, project: Project, annotator: Any) -> None:
    seed_pairs(project, 3)
    client.force_login(annotator)
    item = next_item(client, project)["item"]
    submit(client, project, item["assignment_id"], SUBMIT)
    progress = client.get(f"/api/projects/{project.id}/progress/").json()
    assert progress["done_today"] == 1 and progress["done_total"] == 1
    assert progress["available_to_you"] == 2
    assert progress["project_judgments"] == 1
    assert progress["project_judgments_needed"] == 9


def test_next_and_submit_use_a_small_constant_number_of_queries(
    client: Client, project: Project, annotator: Any
) -> None:
    seed_pairs(project, 50)
    client.force_login(annotator)
    counts = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as next_queries:
            item = next_item(client, project)["item"]
        with CaptureQueriesContext(connection) as submit_queries:
            assert submit(client, project, item["assignment_id"], SUBMIT).status_code == 201
        counts.append((len(next_queries), len(submit_queries)))
    assert len(set(counts)) == 1, counts  # does not grow
    next_count, submit_count = counts[0]
    # session + user, then (inside the test's savepoint) the service's statements:
    # next: membership, live leases, pick, insert lease, take slot, load content;
    # submit: own lease (+ scheme + existing judgment), convert slot, insert judgment, close.
    assert next_count == 10, [q["sql"] for q in next_queries.captured_queries]
    assert submit_count == 8, [q["sql"] for q in submit_queries.captured_queries]
