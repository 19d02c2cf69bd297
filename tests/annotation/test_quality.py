"""Quality: snapshots computed from judgments, the admin-only API, exclusions with audit."""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

import pytest
from django.test import Client

from annotation import queue
from annotation.models import AnnotatorExclusion, Comparison, Judgment, Project, QualitySnapshot
from annotation.quality import projects_needing_recompute, recompute_quality
from annotation.roles import Role
from annotation.services import set_membership
from tests.annotation.factories import seed_pairs

pytestmark = pytest.mark.django_db


def judge(project: Project, users: list[Any], pick: Any, *, seconds: int = 8) -> None:
    """Users take turns, one item each, until the queue is empty for all of them;
    ``pick(user_index, lease)`` returns the choice."""
    active = list(enumerate(users))
    while active:
        i, user = active.pop(0)
        lease = queue.lease_next(project_id=project.id, user=user)
        if lease is None:
            continue
        active.append((i, user))
        choice = pick(i, lease)
        queue.submit_judgment(
            project_id=project.id,
            assignment_id=lease.id,
            user=user,
            data=queue.JudgmentInput(
                choice=choice,
                strength=None if choice in ("tie", "both_bad") else 3,
                time_taken_ms=seconds * 1000 if i != 3 else 500,
            ),
        )


def truth_of(lease: Any) -> str:
    """A hidden rule: for even-numbered prompts the answer "one" is better, for odd ones the
    answer "two" (so that both A and B win sometimes)."""
    number = int(re.search(r"p(\d+)", lease.content_a).group(1))  # type: ignore[union-attr]
    a_better = ("one" in lease.content_a) == (number % 2 == 0)
    left_is_a = not lease.swapped
    return "left" if a_better == left_is_a else "right"


@pytest.fixture
def judged_project(project: Project, make_user: Any) -> tuple[Project, list[Any]]:
    project.gold_rate = 0.2
    project.save(update_fields=["gold_rate"])
    seed_pairs(project, 40, gold={0: "A", 1: "B", 2: "A", 3: "B"})
    users = [make_user(name) for name in ("ada", "bo", "cy", "speedy")]
    for user in users:
        set_membership(project=project, user=user, role=Role.ANNOTATOR)

    def pick(i: int, lease: Any) -> str:
        if i == 3:  # always clicks left, fast
            return "left"
        return truth_of(lease)

    judge(project, users, pick)
    return project, users


def test_recompute_summarizes_agreement_and_flags_the_careless(
    judged_project: tuple[Project, list[Any]],
) -> None:
    project, _ = judged_project
    snapshot = recompute_quality(project_id=project.id)
    data = snapshot.payload
    summary = data["summary"]
    assert summary["judgments"] == snapshot.judgment_count > 0
    assert summary["annotators"] == 4
    alpha = summary["alpha_nominal"]
    assert alpha["value"] is not None and alpha["low"] <= alpha["value"] <= alpha["high"]
    assert 0 < summary["coverage"] <= 1
    rows = {r["username"]: r for r in data["annotators"]}
    assert rows["ada"]["gold_accuracy"] == 1.0
    assert rows["ada"]["flags"] == []
    assert set(rows["speedy"]["flags"]) >= {"too_fast"}
    assert rows["speedy"]["left_share"] == 1.0
    assert rows["ada"]["consensus_agreement"] > rows["speedy"]["consensus_agreement"]
    assert [b["name"] for b in data["batches"]] and data["weeks"] and data["throughput"]
    kappa = data["kappa"]
    n = len(kappa["annotators"])
    assert n == 4 and len(kappa["matrix"]) == n and kappa["matrix"][0][0] == 1.0


def test_exclusion_leaves_judgments_out_of_agreement_and_is_audited(
    judged_project: tuple[Project, list[Any]],
    project_admin: Any,
    client: Client,
) -> None:
    project, users = judged_project
    speedy = users[3]
    before = recompute_quality(project_id=project.id).payload["summary"]["alpha_nominal"]["value"]
    client.force_login(project_admin)
    created = client.post(
        f"/api/projects/{project.id}/exclusions/",
        {"annotator_id": speedy.id, "reason": "clicks left on everything"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    again = client.post(
        f"/api/projects/{project.id}/exclusions/",
        {"annotator_id": speedy.id, "reason": "again"},
        content_type="application/json",
    )
    assert again.status_code == 409
    after = recompute_quality(project_id=project.id).payload
    assert after["summary"]["alpha_nominal"]["value"] > before
    assert {r["username"]: r for r in after["annotators"]}["speedy"]["excluded"] is True

    revoke = client.post(
        f"/api/projects/{project.id}/exclusions/{created.json()['id']}/revoke/",
        {"reason": "talked to them"},
        content_type="application/json",
    )
    assert revoke.status_code == 200
    trail = client.get(f"/api/projects/{project.id}/exclusions/").json()["results"]
    assert len(trail) == 1
    assert trail[0]["created_by"] == "padmin" and trail[0]["reason"] == "clicks left on everything"
    assert trail[0]["revoked_by"] == "padmin" and trail[0]["revoke_reason"] == "talked to them"
    assert trail[0]["active"] is False
    assert AnnotatorExclusion.objects.count() == 1  # revoking keeps the row


def test_exclusion_needs_a_reason_and_a_real_annotator(
    project: Project, project_admin: Any, annotator: Any, client: Client
) -> None:
    client.force_login(project_admin)
    url = f"/api/projects/{project.id}/exclusions/"
    blank = client.post(
        url, {"annotator_id": annotator.id, "reason": " "}, content_type="application/json"
    )
    assert blank.status_code == 400
    stranger = client.post(
        url, {"annotator_id": 999999, "reason": "x"}, content_type="application/json"
    )
    assert stranger.status_code == 404


def test_quality_api_reads_the_snapshot_and_reports_staleness(
    judged_project: tuple[Project, list[Any]],
    project_admin: Any,
    client: Client,
    make_user: Any,
) -> None:
    project, _ = judged_project
    client.force_login(project_admin)
    url = f"/api/projects/{project.id}/quality/"
    empty = client.get(url).json()
    judged = Judgment.objects.filter(project=project).count()
    # never computed: every judgment so far is new (not "stale — 0 new judgments")
    assert empty["data"] is None and empty["stale"] is True
    assert empty["new_judgments"] == judged > 0
    recompute_quality(project_id=project.id)
    fresh = client.get(url).json()
    assert fresh["stale"] is False and fresh["data"]["summary"]["annotators"] == 4
    seed_pairs(project, 1, prefix="late")
    late = make_user("late")
    set_membership(project=project, user=late, role=Role.ANNOTATOR)
    judge(project, [late], lambda i, lease: "tie")
    stale = client.get(url).json()
    assert stale["stale"] is True and stale["new_judgments"] > 0


@pytest.mark.parametrize("role_fixture", ["annotator", "ml_engineer"])
def test_quality_and_exclusions_are_refused_to_non_admins(
    project: Project, client: Client, role_fixture: str, request: pytest.FixtureRequest
) -> None:
    client.force_login(request.getfixturevalue(role_fixture))
    base = f"/api/projects/{project.id}"
    assert client.get(f"{base}/quality/").status_code == 403
    assert client.post(f"{base}/quality/recompute/").status_code == 403
    assert client.get(f"{base}/exclusions/").status_code == 403
    assert (
        client.post(
            f"{base}/exclusions/",
            {"annotator_id": 1, "reason": "x"},
            content_type="application/json",
        ).status_code
        == 403
    )


def test_admin_of_another_project_is_refused(
    project: Project, other_project: Project, client: Client, make_user: Any
) -> None:
    other_admin = make_user("elsewhere")
    set_membership(project=other_project, user=other_admin, role=Role.PROJECT_ADMIN)
    client.force_login(other_admin)
    assert client.get(f"/api/projects/{project.id}/quality/").status_code == 403


def test_projects_needing_recompute(
    judged_project: tuple[Project, list[Any]], settings: Any
) -> None:
    project, _ = judged_project
    settings.PREFLAB_QUALITY_RECOMPUTE_EVERY = 10
    assert projects_needing_recompute() == [project.id]
    recompute_quality(project_id=project.id)
    assert projects_needing_recompute() == []


def test_empty_project_gives_not_enough_data(project: Project) -> None:
    snapshot = recompute_quality(project_id=project.id)
    alpha = snapshot.payload["summary"]["alpha_nominal"]
    assert alpha["value"] is None and alpha["reason"] == "not_enough_data"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_recompute_runs_on_a_real_worker(
    celery_worker: subprocess.Popen[bytes],
    judged_project: tuple[Project, list[Any]],
    project_admin: Any,
    client: Client,
) -> None:
    project, _ = judged_project
    client.force_login(project_admin)
    response = client.post(f"/api/projects/{project.id}/quality/recompute/")
    assert response.status_code == 202
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline and not QualitySnapshot.objects.filter(project=project).exists()
    ):
        time.sleep(0.3)
    body = client.get(f"/api/projects/{project.id}/quality/").json()
    assert body["data"] is not None
    assert body["data"]["summary"]["annotators"] == 4


@pytest.mark.django_db
def test_recomputes_are_collapsed_to_one_queued_per_project(
    project: Project, other_project: Project, project_admin: Any, client: Client, monkeypatch: Any
) -> None:
    from annotation import tasks

    queued: list[tuple[int, str]] = []  # what reached the queue (the dispatch is under test)
    monkeypatch.setattr(
        tasks.recompute_quality,
        "apply_async",
        lambda args, task_id: queued.append((args[0], task_id)),
    )
    client.force_login(project_admin)
    url = f"/api/projects/{project.id}/quality/recompute/"
    first = client.post(url).json()["task_id"]
    assert client.post(url).json()["task_id"] == first  # pressed again: the same task
    assert tasks.enqueue_quality_recompute(project.id) == (first, False)  # the beat too
    assert tasks.enqueue_quality_recompute(other_project.id)[1]  # another project is its own
    assert [p for p, _ in queued] == [project.id, other_project.id]

    tasks.recompute_quality(project.id)  # the worker starts it: the next request queues anew
    second = client.post(url).json()["task_id"]
    assert second != first and [p for p, _ in queued] == [project.id, other_project.id, project.id]


@pytest.mark.django_db
def test_a_recompute_that_could_not_be_queued_does_not_block_the_next(
    project: Project, monkeypatch: Any
) -> None:
    from annotation import tasks

    def broker_down(args: Any, task_id: str) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.recompute_quality, "apply_async", broker_down)
    with pytest.raises(ConnectionError):
        tasks.enqueue_quality_recompute(project.id)
    monkeypatch.setattr(tasks.recompute_quality, "apply_async", lambda args, task_id: None)
    assert tasks.enqueue_quality_recompute(project.id)[1]


def test_an_excluded_annotator_takes_no_items_and_their_leases_go_back(
    project: Project, make_user: Any, project_admin: Any, client: Client
) -> None:
    seed_pairs(project, 4)
    careless, careful = make_user("careless"), make_user("careful")
    for user in (careless, careful):
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
    held = queue.lease_next(project_id=project.id, user=careless)
    assert held is not None
    slots = Comparison.objects.get(pk=held.comparison_id).lease_count
    client.force_login(project_admin)
    created = client.post(
        f"/api/projects/{project.id}/exclusions/",
        {"annotator_id": careless.id, "reason": "random clicks"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    # the lease they held is back in the queue, its slot free for someone else
    assert Comparison.objects.get(pk=held.comparison_id).lease_count == slots - 1
    client.force_login(careless)
    refused = client.post(f"/api/projects/{project.id}/queue/next/", {}, "application/json")
    assert refused.status_code == 403 and refused.json()["code"] == "annotator_excluded"
    submit = client.post(
        f"/api/projects/{project.id}/assignments/{held.id}/submit/",
        {"choice": "left", "strength": 3},
        content_type="application/json",
    )
    assert submit.status_code == 403 and submit.json()["code"] == "annotator_excluded"
    assert not Judgment.objects.filter(annotator=careless).exists()
    # others still get every item, and a revoked exclusion opens the queue again
    assert queue.lease_next(project_id=project.id, user=careful) is not None
    client.force_login(project_admin)
    revoked = client.post(
        f"/api/projects/{project.id}/exclusions/{created.json()['id']}/revoke/",
        {"reason": "retrained"},
        content_type="application/json",
    )
    assert revoked.status_code == 200
    assert queue.lease_next(project_id=project.id, user=careless) is not None
