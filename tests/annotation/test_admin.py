"""Every annotation model is usable in the Django admin; judgments and their revisions are
read-only there."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from annotation import queue
from annotation.models import Judgment, JudgmentRevision, Project
from annotation.undo import undo_judgment
from tests.annotation.factories import seed_pairs

pytestmark = pytest.mark.django_db

MODELS = [
    "project",
    "projectmembership",
    "prompt",
    "response",
    "batch",
    "comparison",
    "assignment",
    "judgment",
    "judgmentrevision",
]


@pytest.fixture
def admin_client(client: Client, make_user: Any) -> Client:
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    return client


@pytest.fixture
def judged(project: Project, annotator: Any) -> queue.StoredJudgment:
    seed_pairs(project, 2)
    lease = queue.lease_next(project_id=project.id, user=annotator)
    assert lease is not None
    judgment, _ = queue.submit_judgment(
        project_id=project.id,
        assignment_id=lease.id,
        user=annotator,
        data=queue.JudgmentInput(choice="tie"),
    )
    return judgment


@pytest.mark.parametrize("model", MODELS)
def test_changelist_with_search_and_detail_pages_render(
    admin_client: Client, judged: queue.StoredJudgment, model: str
) -> None:
    base = f"/admin/annotation/{model}/"
    assert admin_client.get(base).status_code == 200
    assert admin_client.get(base, {"q": "ann"}).status_code == 200


def test_judgments_cannot_be_changed_or_deleted_in_the_admin(
    admin_client: Client, judged: queue.StoredJudgment
) -> None:
    page = admin_client.get(f"/admin/annotation/judgment/{judged.id}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.get("/admin/annotation/judgment/add/").status_code == 403
    delete = admin_client.post(f"/admin/annotation/judgment/{judged.id}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert Judgment.objects.filter(pk=judged.id).exists()


def test_revisions_are_listed_and_read_only_in_the_admin(
    admin_client: Client, project: Project, annotator: Any
) -> None:
    project.overlap_k = 2  # k=1 would be complete at once: no undo
    project.save(update_fields=["overlap_k"])
    seed_pairs(project, 1)
    lease = queue.lease_next(project_id=project.id, user=annotator)
    assert lease is not None
    queue.submit_judgment(
        project_id=project.id,
        assignment_id=lease.id,
        user=annotator,
        data=queue.JudgmentInput(choice="tie"),
    )
    revision = undo_judgment(project_id=project.id, assignment_id=lease.id, user=annotator).revision
    listing = admin_client.get("/admin/annotation/judgmentrevision/", {"q": "ann"})
    assert listing.status_code == 200 and f"/{revision.pk}/change/".encode() in listing.content
    page = admin_client.get(f"/admin/annotation/judgmentrevision/{revision.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.get("/admin/annotation/judgmentrevision/add/").status_code == 403
    delete = admin_client.post(
        f"/admin/annotation/judgmentrevision/{revision.pk}/delete/", {"post": "yes"}
    )
    assert delete.status_code == 403
    assert JudgmentRevision.objects.filter(pk=revision.pk).exists()
