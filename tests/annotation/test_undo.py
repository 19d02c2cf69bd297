"""Undo of the latest judgment: the revision it leaves, the item shown again, each refusal,
the counters, what quality and exports count, and an undo racing a submit for the last slot."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from annotation import queue
from annotation.export import create_export
from annotation.export_options import parse_export_options
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Judgment,
    JudgmentRevision,
    Project,
)
from annotation.quality import recompute_quality
from annotation.roles import Role
from annotation.selectors import quality_view
from annotation.services import create_project, exclude_annotator, set_membership
from annotation.undo import undo_judgment
from tests.annotation.factories import seed_pairs

pytestmark = pytest.mark.django_db

LEFT = {"choice": "left", "strength": 3, "rationale": "shorter", "time_taken_ms": 5000}
RIGHT = {"choice": "right", "strength": 1, "rationale": "on second thought", "time_taken_ms": 900}


def url(project: Project, assignment_id: int, action: str) -> str:
    return f"/api/projects/{project.id}/assignments/{assignment_id}/{action}/"


def next_item(client: Client, project: Project, exclude: list[int] | None = None) -> Any:
    response = client.post(
        f"/api/projects/{project.id}/queue/next/",
        {"exclude": exclude or []},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()["item"]


def post(client: Client, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(path, body or {}, content_type="application/json")


def judge(client: Client, project: Project, body: dict[str, Any] = LEFT) -> dict[str, Any]:
    item = next_item(client, project)
    response = post(client, url(project, item["assignment_id"], "submit"), body)
    assert response.status_code == 201, response.content
    return dict(item)


def counters(comparison_id: int) -> tuple[int, int]:
    c = Comparison.objects.get(pk=comparison_id)
    return c.judgment_count, c.lease_count


def test_undo_shows_the_same_item_with_the_answer_as_a_draft_and_keeps_a_revision(
    client: Client, project: Project, annotator: Any
) -> None:
    seed_pairs(project, 3)
    client.force_login(annotator)
    item = judge(client, project)
    judgment = Judgment.objects.get(assignment_id=item["assignment_id"])
    comparison_id = judgment.comparison_id
    assert counters(comparison_id) == (1, 0)

    response = post(client, url(project, item["assignment_id"], "undo"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["item"]["assignment_id"] == item["assignment_id"]
    assert body["item"]["left"] == item["left"] and body["item"]["right"] == item["right"]
    assert body["draft"] == {"choice": "left", "strength": 3, "rationale": "shorter"}

    revision = JudgmentRevision.objects.get(pk=body["revision_id"])
    assert revision.judgment_id_was == judgment.pk
    assert (revision.choice, revision.strength, revision.rationale) == (
        judgment.choice,
        3,
        "shorter",
    )
    assert revision.time_taken_ms == 5000 and revision.judged_at == judgment.created_at
    assert revision.undone_by == annotator and revision.annotator == annotator
    assert revision.resubmitted_judgment_id is None
    assert not Judgment.objects.filter(pk=judgment.pk).exists()
    # the judgment went back to being a lease: same slots taken
    assert counters(comparison_id) == (0, 1)
    assignment = Assignment.objects.get(pk=item["assignment_id"])
    assert assignment.status == AssignmentStatus.ACTIVE and assignment.closed_at is None
    # a refresh serves the undone item first
    assert next_item(client, project)["assignment_id"] == item["assignment_id"]


def test_resubmit_creates_the_new_judgment_linked_to_the_revision(
    client: Client, project: Project, annotator: Any
) -> None:
    seed_pairs(project, 3)
    client.force_login(annotator)
    item = judge(client, project)
    revision_id = post(client, url(project, item["assignment_id"], "undo")).json()["revision_id"]
    response = post(client, url(project, item["assignment_id"], "submit"), RIGHT)
    assert response.status_code == 201, response.content
    assert response.json()["choice"] == "right" and response.json()["strength"] == 1
    new = Judgment.objects.get(assignment_id=item["assignment_id"])
    assert JudgmentRevision.objects.get(pk=revision_id).resubmitted_judgment_id == new.pk
    assert counters(new.comparison_id) == (1, 0)
    assert Judgment.objects.filter(comparison_id=new.comparison_id).count() == 1
    # the resubmission can be undone in turn: a second revision, chained by ids
    second = post(client, url(project, item["assignment_id"], "undo"))
    assert second.status_code == 200, second.content
    assert second.json()["draft"]["choice"] == "right"
    chain = JudgmentRevision.objects.filter(assignment_id=item["assignment_id"]).order_by("id")
    assert [r.judgment_id_was for r in chain] == [
        JudgmentRevision.objects.get(pk=revision_id).judgment_id_was,
        new.pk,
    ]
    assert chain[0].resubmitted_judgment_id == chain[1].judgment_id_was


def test_undo_twice_is_refused_as_already_undone(
    client: Client, project: Project, annotator: Any
) -> None:
    seed_pairs(project, 2)
    client.force_login(annotator)
    item = judge(client, project)
    assert post(client, url(project, item["assignment_id"], "undo")).status_code == 200
    again = post(client, url(project, item["assignment_id"], "undo"))
    assert again.status_code == 409 and again.json()["code"] == "already_undone"
    assert JudgmentRevision.objects.count() == 1


def test_undo_after_the_window_is_refused(
    client: Client, project: Project, annotator: Any, settings: Any
) -> None:
    settings.PREFLAB_UNDO_WINDOW_SECONDS = 60
    seed_pairs(project, 2)
    client.force_login(annotator)
    item = judge(client, project)
    Judgment.objects.filter(assignment_id=item["assignment_id"]).update(
        created_at=timezone.now() - timedelta(seconds=61)
    )
    response = post(client, url(project, item["assignment_id"], "undo"))
    assert response.status_code == 409
    assert response.json()["code"] == "undo_window_passed"
    assert response.json()["extra"]["window_seconds"] == 60
    assert Judgment.objects.filter(assignment_id=item["assignment_id"]).exists()
    assert not JudgmentRevision.objects.exists()


def test_undo_of_a_complete_comparison_is_refused(
    client: Client, make_user: Any, annotator: Any
) -> None:
    project = create_project(name="pairs", overlap_k=2)
    set_membership(project=project, user=annotator, role=Role.ANNOTATOR)
    other = make_user("other")
    set_membership(project=project, user=other, role=Role.ANNOTATOR)
    seed_pairs(project, 1)
    client.force_login(annotator)
    item = judge(client, project)
    client.force_login(other)
    judge(client, project)
    comparison_id = Judgment.objects.get(assignment_id=item["assignment_id"]).comparison_id
    assert counters(comparison_id) == (2, 0)
    client.force_login(annotator)
    response = post(client, url(project, item["assignment_id"], "undo"))
    assert response.status_code == 409 and response.json()["code"] == "comparison_complete"
    assert counters(comparison_id) == (2, 0)


def test_undo_of_someone_elses_judgment_is_not_found(
    client: Client, project: Project, annotator: Any, make_user: Any
) -> None:
    seed_pairs(project, 2)
    client.force_login(annotator)
    item = judge(client, project)
    other = make_user("other")
    set_membership(project=project, user=other, role=Role.ANNOTATOR)
    client.force_login(other)
    response = post(client, url(project, item["assignment_id"], "undo"))
    assert response.status_code == 404 and response.json()["code"] == "not_your_judgment"
    assert Judgment.objects.filter(assignment_id=item["assignment_id"]).exists()


def test_only_the_latest_judgment_can_be_undone(
    client: Client, project: Project, annotator: Any
) -> None:
    seed_pairs(project, 3)
    client.force_login(annotator)
    first = judge(client, project)
    second = judge(client, project)
    response = post(client, url(project, first["assignment_id"], "undo"))
    assert response.status_code == 409 and response.json()["code"] == "not_latest_judgment"
    assert post(client, url(project, second["assignment_id"], "undo")).status_code == 200


def test_an_excluded_annotator_cannot_undo(
    client: Client, project: Project, annotator: Any, project_admin: Any
) -> None:
    seed_pairs(project, 2)
    client.force_login(annotator)
    item = judge(client, project)
    exclude_annotator(project=project, annotator_id=annotator.id, reason="spam", by=project_admin)
    response = post(client, url(project, item["assignment_id"], "undo"))
    assert response.status_code == 403 and response.json()["code"] == "annotator_excluded"
    assert Judgment.objects.filter(assignment_id=item["assignment_id"]).exists()


def test_no_undo_in_an_archived_project(client: Client, project: Project, annotator: Any) -> None:
    from annotation.project_admin import archive_project

    seed_pairs(project, 2)
    client.force_login(annotator)
    item = judge(client, project)
    archive_project(project=project)
    response = post(client, url(project, item["assignment_id"], "undo"))
    assert response.status_code == 409 and response.json()["code"] == "project_archived"
    assert Judgment.objects.filter(assignment_id=item["assignment_id"]).exists()
    assert not JudgmentRevision.objects.exists()


def test_a_lease_without_judgment_has_nothing_to_undo(
    client: Client, project: Project, annotator: Any
) -> None:
    seed_pairs(project, 2)
    client.force_login(annotator)
    item = next_item(client, project)
    response = post(client, url(project, item["assignment_id"], "undo"))
    assert response.status_code == 409 and response.json()["code"] == "not_judged"


def test_other_roles_are_refused(
    client: Client, project: Project, annotator: Any, project_admin: Any, ml_engineer: Any
) -> None:
    seed_pairs(project, 2)
    client.force_login(annotator)
    item = judge(client, project)
    for user in (project_admin, ml_engineer):
        client.force_login(user)
        assert post(client, url(project, item["assignment_id"], "undo")).status_code == 403
    client.logout()
    assert post(client, url(project, item["assignment_id"], "undo")).status_code == 403


def test_undo_keeps_at_most_two_live_leases_releasing_the_prefetch(
    client: Client, project: Project, annotator: Any
) -> None:
    seed_pairs(project, 5)
    client.force_login(annotator)
    first = judge(client, project)
    shown = next_item(client, project)
    prefetch = next_item(client, project, exclude=[shown["assignment_id"]])
    assert prefetch["assignment_id"] != shown["assignment_id"]
    prefetched = Assignment.objects.get(pk=prefetch["assignment_id"]).comparison_id

    assert post(client, url(project, first["assignment_id"], "undo")).status_code == 200
    live = Assignment.objects.filter(annotator=annotator, status=AssignmentStatus.ACTIVE)
    assert sorted(live.values_list("id", flat=True)) == sorted(
        [first["assignment_id"], shown["assignment_id"]]
    )
    assert counters(prefetched) == (0, 0)  # the prefetch's slot is free again
    # the page asks for its next prefetch: the item it showed before the undo
    assert (
        next_item(client, project, exclude=[first["assignment_id"]])["assignment_id"]
        == (shown["assignment_id"])
    )


def test_quality_and_exports_count_only_the_current_judgment(
    client: Client, annotator: Any, project_admin: Any, tmp_path: Path, settings: Any
) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    project = create_project(name="pairs", overlap_k=2)  # k=1 would be complete: no undo
    set_membership(project=project, user=annotator, role=Role.ANNOTATOR)
    seed_pairs(project, 1)
    client.force_login(annotator)
    item = judge(client, project, LEFT)
    assert post(client, url(project, item["assignment_id"], "undo")).status_code == 200
    # while undone: nothing counts
    assert recompute_quality(project_id=project.id).payload["summary"]["judgments"] == 0
    post(client, url(project, item["assignment_id"], "submit"), RIGHT)

    snapshot = recompute_quality(project_id=project.id)
    assert snapshot.payload["summary"]["judgments"] == 1
    current = Judgment.objects.get(assignment_id=item["assignment_id"])
    export = create_export(project=project, options=parse_export_options({}), user=project_admin)
    rows = []
    for split in ("train", "test"):
        path = Path(settings.ARTIFACT_ROOT) / export.path / f"{split}.jsonl"
        if path.exists():
            rows += [json.loads(line) for line in path.read_text().splitlines() if line]
    assert len(rows) == 1
    assert rows[0]["judgment_ids"] == [current.pk]
    assert rows[0]["votes"] == 1
    # the resubmitted answer ("right" of the same display) is the one exported
    right_content = item["right"]["content"]
    assert rows[0]["chosen"][0]["content"] == right_content


def test_undo_service_refuses_a_missing_lease(project: Project, annotator: Any) -> None:
    from annotation.undo import NotYourJudgment

    with pytest.raises(NotYourJudgment):
        undo_judgment(project_id=project.id, assignment_id=10**9, user=annotator)


# --- concurrency -------------------------------------------------------------------------------


def _race(project_id: int, undoer_id: int, undo_lease: int, submitter_id: int, lease: int) -> str:
    """Undo by one annotator and submit by another, started at the same instant."""
    users = get_user_model().objects.in_bulk([undoer_id, submitter_id])
    barrier = threading.Barrier(2)

    def undo() -> str:
        try:
            barrier.wait()
            undo_judgment(project_id=project_id, assignment_id=undo_lease, user=users[undoer_id])
            return "undone"
        except queue.ConflictError as error:
            return str(error.code)
        finally:
            connections.close_all()

    def submit() -> str:
        try:
            barrier.wait()
            _, created = queue.submit_judgment(
                project_id=project_id,
                assignment_id=lease,
                user=users[submitter_id],
                data=queue.JudgmentInput(choice="right", strength=2),
            )
            return "created" if created else "retry"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(2) as pool:
        undone, submitted = pool.submit(undo), pool.submit(submit)
        assert submitted.result() == "created"  # the other annotator's vote is never refused
        return undone.result()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_undo_racing_a_submit_for_the_last_slot_never_makes_k_plus_one_or_loses_a_vote(
    make_user: Any,
) -> None:
    assert connection.vendor == "postgresql"
    rounds = 12
    project = create_project(name="race", overlap_k=2)
    first, second = make_user("first"), make_user("second")
    for user in (first, second):
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
    seed_pairs(project, rounds)
    outcomes = []
    for _ in range(rounds):
        mine = queue.lease_next(project_id=project.id, user=first)
        assert mine is not None
        queue.submit_judgment(
            project_id=project.id,
            assignment_id=mine.id,
            user=first,
            data=queue.JudgmentInput(choice="left", strength=3),
        )
        theirs = queue.lease_next(project_id=project.id, user=second)
        assert theirs is not None and theirs.comparison_id == mine.comparison_id
        # the comparison has one judgment and one lease: the submit takes the last slot
        outcome = _race(project.id, first.id, mine.id, second.id, theirs.id)
        outcomes.append(outcome)
        assert outcome in ("undone", "comparison_complete"), outcome
        judgments, leases = counters(mine.comparison_id)
        rows = Judgment.objects.filter(comparison_id=mine.comparison_id).count()
        assert judgments == rows <= 2
        if outcome == "undone":
            assert (judgments, leases) == (1, 1)
            # the undoer judges again: the comparison completes with exactly k votes
            queue.submit_judgment(
                project_id=project.id,
                assignment_id=mine.id,
                user=first,
                data=queue.JudgmentInput(choice="right", strength=1),
            )
        assert counters(mine.comparison_id) == (2, 0)
        assert set(
            Judgment.objects.filter(comparison_id=mine.comparison_id).values_list(
                "annotator_id", flat=True
            )
        ) == {first.id, second.id}
    assert JudgmentRevision.objects.count() == outcomes.count("undone")
    assert Judgment.objects.filter(project=project).count() == 2 * rounds


def test_an_undo_after_the_snapshot_makes_the_quality_dashboard_stale_until_recomputed(
    client: Client, project: Project, annotator: Any, project_admin: Any
) -> None:
    project.overlap_k = 2  # k=1 would be complete: no undo
    project.save(update_fields=["overlap_k"])
    seed_pairs(project, 2)
    client.force_login(annotator)
    judge(client, project, LEFT)
    item = judge(client, project, LEFT)
    recompute_quality(project_id=project.id)
    quality = f"/api/projects/{project.id}/quality/"

    def read_quality() -> dict[str, Any]:
        client.force_login(project_admin)
        body = client.get(quality).json()
        client.force_login(annotator)
        return dict(body)

    fresh = read_quality()
    assert (fresh["stale"], fresh["new_judgments"], fresh["undone_judgments"]) == (False, 0, 0)
    assert post(client, url(project, item["assignment_id"], "undo")).status_code == 200
    undone = read_quality()
    # no judgment is newer than the snapshot, yet one it counted is gone
    assert (undone["stale"], undone["new_judgments"], undone["undone_judgments"]) == (True, 0, 1)
    recompute_quality(project_id=project.id)
    again = read_quality()
    assert (again["stale"], again["new_judgments"], again["undone_judgments"]) == (False, 0, 0)
    assert again["data"]["summary"]["judgments"] == 1
    # the resubmit is a new judgment (a newer id): stale again, and not counted as undone
    assert post(client, url(project, item["assignment_id"], "submit"), RIGHT).status_code == 201
    resubmitted = read_quality()
    assert (resubmitted["stale"], resubmitted["new_judgments"]) == (True, 1)
    assert resubmitted["undone_judgments"] == 0


def test_an_undo_of_a_judgment_newer_than_the_snapshot_is_not_counted_as_undone(
    client: Client, annotator: Any
) -> None:
    project = create_project(name="pairs", overlap_k=2)
    set_membership(project=project, user=annotator, role=Role.ANNOTATOR)
    seed_pairs(project, 2)
    client.force_login(annotator)
    judge(client, project, LEFT)
    recompute_quality(project_id=project.id)
    item = judge(client, project, LEFT)  # after the snapshot: never counted by it
    assert post(client, url(project, item["assignment_id"], "undo")).status_code == 200
    view = quality_view(project_id=project.id)
    assert (view["stale"], view["new_judgments"], view["undone_judgments"]) == (False, 0, 0)
