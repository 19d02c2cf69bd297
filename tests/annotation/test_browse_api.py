"""The data browser's API: rows and fields, every filter, keyset pagination, errors, roles,
and a constant number of queries per page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation import queue
from annotation.browse_selectors import encode_cursor
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Judgment,
    JudgmentRevision,
    Project,
)
from annotation.roles import Role
from annotation.services import exclude_annotator, set_membership
from annotation.undo import undo_judgment
from tests.annotation.factories import seed_pairs

pytestmark = pytest.mark.django_db

LISTS = ("prompts", "comparisons", "judgments")


def judge(
    comparison: Comparison,
    user: Any,
    choice: str,
    strength: int | None = 3,
    rationale: str = "",
    time_taken_ms: int | None = 5000,
) -> Judgment:
    """A submitted lease and its judgment, with the comparison's counter kept in step."""
    now = timezone.now()
    assignment = Assignment.objects.create(
        project_id=comparison.project_id,
        comparison=comparison,
        annotator=user,
        status=AssignmentStatus.SUBMITTED,
        swapped=False,
        expires_at=now + timedelta(minutes=10),
        closed_at=now,
    )
    judgment = Judgment.objects.create(
        assignment=assignment,
        project_id=comparison.project_id,
        comparison=comparison,
        annotator=user,
        choice=choice,
        strength=strength,
        rationale=rationale,
        time_taken_ms=time_taken_ms,
        swapped=False,
    )
    Comparison.objects.filter(pk=comparison.pk).update(judgment_count=F("judgment_count") + 1)
    return judgment


def url(project: Project, kind: str, **params: Any) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/projects/{project.id}/data/{kind}/" + (f"?{query}" if query else "")


def get_ok(client: Client, path: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return dict(response.json())


def ids(client: Client, project: Project, kind: str, **params: Any) -> list[int]:
    return [row["id"] for row in get_ok(client, url(project, kind, **params))["results"]]


class Data:
    """A project of 6 comparisons (two batches, one gold) judged by three annotators."""

    def __init__(self, project: Project, make_user: Any) -> None:
        project.overlap_k = 3
        project.save(update_fields=["overlap_k"])
        self.project = project
        self.batch1 = seed_pairs(project, 3, prefix="one").batch_id
        self.batch2 = seed_pairs(project, 3, prefix="two", gold={2: "A"}).batch_id
        self.users = []
        for name in ("alice", "bob", "carol"):
            user = make_user(name)
            set_membership(project=project, user=user, role=Role.ANNOTATOR)
            self.users.append(user)
        alice, bob, carol = self.users
        c = list(Comparison.objects.filter(project=project).order_by("id"))
        self.comparisons = c
        # c0: unanimous A (complete); c1: 2 of 3 B (complete); c2: A vs tie (open)
        for user in self.users:
            judge(c[0], user, "A", 4, rationale="A explains why", time_taken_ms=4000)
        judge(c[1], alice, "B")
        judge(c[1], bob, "B")
        judge(c[1], carol, "A", 1)
        judge(c[2], alice, "A")
        judge(c[2], bob, "tie", None)
        # c5 is the gold comparison: one gold judgment
        assert c[5].is_gold
        judge(c[5], carol, "A")


@pytest.fixture
def data(project: Project, make_user: Any) -> Data:
    return Data(project, make_user)


@pytest.fixture
def admin_client(client: Client, project_admin: Any) -> Client:
    client.force_login(project_admin)
    return client


# --- rows and fields ---------------------------------------------------------------------------


def test_prompts_list_shows_preview_external_id_batch_and_comparison_count(
    admin_client: Client, data: Data
) -> None:
    body = get_ok(admin_client, url(data.project, "prompts"))
    rows = body["results"]
    assert [r["external_id"] for r in rows] == ["two2", "two1", "two0", "one2", "one1", "one0"]
    first = rows[-1]
    assert first["preview"] == "Question one0?"
    assert first["comparisons"] == 1
    assert first["turns"] == 1
    assert first["batch"]["id"] == data.batch1
    assert first["created_at"]
    assert body["next_cursor"] is None


def test_comparisons_list_shows_both_responses_votes_consensus_agreement_and_status(
    admin_client: Client, data: Data
) -> None:
    rows = {r["id"]: r for r in get_ok(admin_client, url(data.project, "comparisons"))["results"]}
    c = data.comparisons
    assert list(rows) == [x.id for x in reversed(c)]  # newest first
    unanimous = rows[c[0].id]
    assert unanimous["response_a"]["preview"] == "Answer one to one0."
    assert unanimous["response_b"]["preview"] == "Answer two to one0."
    assert unanimous["prompt"]["external_id"] == "one0"
    assert unanimous["batch"] == {"id": data.batch1, "name": unanimous["batch"]["name"]}
    assert unanimous["votes"] == 3 and unanimous["judgment_count"] == 3
    assert unanimous["consensus"] == "A" and unanimous["agreement"] == 1.0
    assert unanimous["status"] == "complete" and unanimous["gold"] is False
    majority = rows[c[1].id]
    assert majority["consensus"] == "B" and majority["agreement"] == round(2 / 3, 4)
    assert majority["tally"] == {"A": 1, "B": 2, "tie": 0, "both_bad": 0}
    split = rows[c[2].id]
    assert split["consensus"] is None and split["agreement"] == 0.5
    assert split["status"] == "open"
    untouched = rows[c[3].id]
    assert untouched["votes"] == 0 and untouched["agreement"] is None
    gold = rows[c[5].id]
    assert gold["gold"] is True and gold["gold_choice"] == "A" and gold["status"] == "gold"


def test_judgments_list_shows_annotator_comparison_choice_strength_and_time(
    admin_client: Client, data: Data
) -> None:
    rows = get_ok(admin_client, url(data.project, "judgments"))["results"]
    assert len(rows) == 9
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    newest = rows[0]
    assert newest["annotator"]["username"] == "carol"
    assert newest["comparison_id"] == data.comparisons[5].id
    assert newest["choice"] == "A" and newest["strength"] == 3
    assert newest["gold"] is True
    assert newest["prompt"]["external_id"] == "two2"
    assert newest["created_at"]
    weak = next(
        r for r in rows if r["comparison_id"] == data.comparisons[1].id and r["choice"] == "A"
    )
    assert weak["strength"] == 1 and weak["time_taken_ms"] == 5000


def test_comparison_detail_has_full_texts_and_the_whole_history(
    admin_client: Client, data: Data
) -> None:
    c = data.comparisons[0]
    alice = data.users[0]
    # a skipped and an expired lease on another comparison show up in that one's history
    lease = queue.lease_next(project_id=data.project.id, user=make_annotator(data, "dave"))
    assert lease is not None
    exclude_annotator(
        project=data.project, annotator_id=alice.id, reason="too fast", by=data.users[1]
    )
    body = get_ok(admin_client, f"/api/projects/{data.project.id}/data/comparisons/{c.id}/")
    assert body["prompt"]["messages"] == [{"role": "user", "content": "Question one0?"}]
    assert body["response_a"]["content"] == "Answer one to one0."
    assert body["response_b"]["content"] == "Answer two to one0."
    assert body["consensus"] == "A" and body["agreement"] == 1.0 and body["votes"] == 3
    history = body["judgments"]
    assert [j["annotator"]["username"] for j in history] == ["alice", "bob", "carol"]
    assert history[0] | {"id": 0, "assignment_id": 0, "created_at": ""} == {
        "id": 0,
        "assignment_id": 0,
        "created_at": "",
        "annotator": {"id": alice.id, "username": "alice"},
        "annotator_excluded": True,
        "choice": "A",
        "strength": 4,
        "rationale": "A explains why",
        "time_taken_ms": 4000,
        "swapped": False,
    }
    assert history[1]["annotator_excluded"] is False
    assert [a["status"] for a in body["leases"]] == ["submitted"] * 3

    leased = get_ok(
        admin_client, f"/api/projects/{data.project.id}/data/comparisons/{lease.comparison_id}/"
    )
    assert [(a["annotator"]["username"], a["status"]) for a in leased["leases"]][-1] == (
        "dave",
        "active",
    )


def undo_and_resubmit_twice(data: Data) -> tuple[Comparison, list[JudgmentRevision], int]:
    """bob's judgment on c2 (open: 2 of 3) undone, judged again as B, and that undone too."""
    bob = data.users[1]
    c = data.comparisons[2]
    lease_id = Judgment.objects.get(comparison=c, annotator=bob).assignment_id
    first = undo_judgment(project_id=data.project.id, assignment_id=lease_id, user=bob).revision
    replacement, _ = queue.submit_judgment(
        project_id=data.project.id,
        assignment_id=lease_id,
        user=bob,
        data=queue.JudgmentInput(choice="right", strength=2, rationale="changed my mind"),
    )
    second = undo_judgment(project_id=data.project.id, assignment_id=lease_id, user=bob).revision
    return c, [first, second], replacement.id


def test_comparison_detail_lists_undone_judgments_and_what_replaced_them(
    admin_client: Client, data: Data
) -> None:
    bob = data.users[1]
    c, (first, second), replacement_id = undo_and_resubmit_twice(data)
    exclude_annotator(project=data.project, annotator_id=bob.id, reason="rushed", by=data.users[0])
    body = get_ok(admin_client, f"/api/projects/{data.project.id}/data/comparisons/{c.id}/")
    # bob's answers are all undone: only alice's judgment is current
    assert [j["annotator"]["username"] for j in body["judgments"]] == ["alice"]
    revisions = body["revisions"]
    assert [r["id"] for r in revisions] == [first.pk, second.pk]
    assert revisions[0] | {"judged_at": "", "undone_at": ""} == {
        "id": first.pk,
        "judgment_id": first.judgment_id_was,
        "annotator": {"id": bob.id, "username": "bob"},
        "annotator_excluded": True,
        "assignment_id": first.assignment_id,
        "choice": "tie",
        "strength": None,
        "rationale": "",
        "time_taken_ms": 5000,
        "swapped": False,
        "judged_at": "",
        "undone_at": "",
        "undone_by": {"id": bob.id, "username": "bob"},
        "resubmitted_judgment_id": replacement_id,
    }
    assert revisions[0]["judged_at"] <= revisions[0]["undone_at"]
    # the replacement, undone in its turn, is the second revision; nothing replaced that one
    assert revisions[1]["judgment_id"] == replacement_id
    assert (revisions[1]["choice"], revisions[1]["strength"]) == ("B", 2)
    assert revisions[1]["rationale"] == "changed my mind"
    assert revisions[1]["resubmitted_judgment_id"] is None
    # one lease answered all three: live again after the undo, then expired by the exclusion
    assert [a["status"] for a in body["leases"] if a["annotator"]["id"] == bob.id] == ["expired"]
    # other comparisons have no revisions
    other = f"/api/projects/{data.project.id}/data/comparisons/{data.comparisons[0].id}/"
    assert get_ok(admin_client, other)["revisions"] == []


def make_annotator(data: Data, name: str) -> Any:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=name, password="x")
    set_membership(project=data.project, user=user, role=Role.ANNOTATOR)
    return user


def test_a_skip_is_recorded_in_the_history_with_its_reason(
    admin_client: Client, data: Data
) -> None:
    dave = make_annotator(data, "dave")
    lease = queue.lease_next(project_id=data.project.id, user=dave)
    assert lease is not None
    queue.skip_assignment(
        project_id=data.project.id, assignment_id=lease.id, user=dave, reason="unreadable"
    )
    body = get_ok(
        admin_client, f"/api/projects/{data.project.id}/data/comparisons/{lease.comparison_id}/"
    )
    skipped = [a for a in body["leases"] if a["annotator"]["username"] == "dave"]
    assert len(skipped) == 1
    assert skipped[0]["status"] == "skipped" and skipped[0]["skip_reason"] == "unreadable"
    assert skipped[0]["closed_at"]


def test_tallies_follow_judgments_submitted_through_the_queue(
    admin_client: Client, data: Data
) -> None:
    dave = make_annotator(data, "dave")
    lease = queue.lease_next(project_id=data.project.id, user=dave)
    assert lease is not None
    queue.submit_judgment(
        project_id=data.project.id,
        assignment_id=lease.id,
        user=dave,
        data=queue.JudgmentInput(choice="tie"),
    )
    body = get_ok(
        admin_client, f"/api/projects/{data.project.id}/data/comparisons/{lease.comparison_id}/"
    )
    judged = Judgment.objects.filter(comparison_id=lease.comparison_id)
    assert body["votes"] == judged.count() == body["judgment_count"]
    assert body["tally"]["tie"] == judged.filter(choice="tie").count() >= 1


def test_tallies_follow_a_changed_choice_and_a_deleted_judgment(
    admin_client: Client, data: Data
) -> None:
    c1 = data.comparisons[1]
    path = f"/api/projects/{data.project.id}/data/comparisons/{c1.id}/"
    carol_vote = Judgment.objects.get(comparison=c1, annotator=data.users[2])
    carol_vote.choice = "B"
    carol_vote.save(update_fields=["choice"])
    body = get_ok(admin_client, path)
    assert body["tally"] == {"A": 0, "B": 3, "tie": 0, "both_bad": 0}
    assert body["agreement"] == 1.0 and body["consensus"] == "B"
    Judgment.objects.filter(comparison=c1, annotator=data.users[0]).delete()
    body = get_ok(admin_client, path)
    assert body["votes"] == 2 and body["tally"]["B"] == 2


# --- filters -----------------------------------------------------------------------------------


def test_comparison_filters_each_select_exactly_the_matching_rows(
    admin_client: Client, data: Data
) -> None:
    c = [x.id for x in data.comparisons]
    alice, bob, carol = data.users
    p = data.project
    assert ids(admin_client, p, "comparisons", batch=data.batch1) == [c[2], c[1], c[0]]
    assert ids(admin_client, p, "comparisons", annotator=bob.id) == [c[2], c[1], c[0]]
    assert ids(admin_client, p, "comparisons", annotator=carol.id) == [c[5], c[1], c[0]]
    assert ids(admin_client, p, "comparisons", status="complete") == [c[1], c[0]]
    assert ids(admin_client, p, "comparisons", status="open") == [c[4], c[3], c[2]]
    assert ids(admin_client, p, "comparisons", status="gold") == [c[5]]
    assert ids(admin_client, p, "comparisons", gold="yes") == [c[5]]
    assert ids(admin_client, p, "comparisons", gold="no") == [c[4], c[3], c[2], c[1], c[0]]
    prompt_id = data.comparisons[3].prompt_id
    assert ids(admin_client, p, "comparisons", prompt=prompt_id) == [c[3]]
    # agreement: c0 1.0, c1 2/3, c2 0.5, c5 1.0 (one vote); unjudged ones have none
    assert ids(admin_client, p, "comparisons", agreement_min=0.9) == [c[5], c[0]]
    assert ids(admin_client, p, "comparisons", agreement_max=0.7) == [c[2], c[1]]
    assert ids(admin_client, p, "comparisons", agreement_min=0.6, agreement_max=0.7) == [c[1]]
    assert ids(admin_client, p, "comparisons", agreement_min=0, agreement_max=1) == [
        c[5],
        c[2],
        c[1],
        c[0],
    ]
    # filters combine
    assert ids(
        admin_client, p, "comparisons", batch=data.batch1, agreement_min=0.9, annotator=alice.id
    ) == [c[0]]


def test_judgment_filters_each_select_exactly_the_matching_rows(
    admin_client: Client, data: Data
) -> None:
    c = data.comparisons
    alice, bob, carol = data.users
    p = data.project

    def judgments(**params: Any) -> list[tuple[str, int, str]]:
        rows = get_ok(admin_client, url(p, "judgments", **params))["results"]
        return [(r["annotator"]["username"], r["comparison_id"], r["choice"]) for r in rows]

    assert judgments(annotator=alice.id) == [
        ("alice", c[2].id, "A"),
        ("alice", c[1].id, "B"),
        ("alice", c[0].id, "A"),
    ]
    assert judgments(batch=data.batch2) == [("carol", c[5].id, "A")]
    # filtered by batch: comparison by comparison, newest first
    assert judgments(batch=data.batch1) == [
        ("bob", c[2].id, "tie"),
        ("alice", c[2].id, "A"),
        ("carol", c[1].id, "A"),
        ("bob", c[1].id, "B"),
        ("alice", c[1].id, "B"),
        ("carol", c[0].id, "A"),
        ("bob", c[0].id, "A"),
        ("alice", c[0].id, "A"),
    ]
    assert judgments(gold="true") == [("carol", c[5].id, "A")]
    judge(c[4], alice, "B")  # newer than every other judgment, on an older comparison
    assert judgments(gold="no")[0] == ("alice", c[4].id, "B")  # newest first
    judge(c[5], alice, "B")
    assert judgments(gold="yes") == [("alice", c[5].id, "B"), ("carol", c[5].id, "A")]
    assert len(judgments(gold="false")) == 9
    assert judgments(comparison=c[2].id) == [("bob", c[2].id, "tie"), ("alice", c[2].id, "A")]
    assert judgments(prompt=c[1].prompt_id, choice="A") == [("carol", c[1].id, "A")]
    assert judgments(choice="tie", annotator=bob.id) == [("bob", c[2].id, "tie")]
    assert judgments(annotator=carol.id, batch=data.batch1, gold="no") == [
        ("carol", c[1].id, "A"),
        ("carol", c[0].id, "A"),
    ]


def test_prompt_filters_select_by_batch_and_external_id(admin_client: Client, data: Data) -> None:
    p = data.project

    def external_ids(**params: Any) -> list[str]:
        return [
            r["external_id"] for r in get_ok(admin_client, url(p, "prompts", **params))["results"]
        ]

    assert external_ids(batch=data.batch2) == ["two2", "two1", "two0"]
    assert external_ids(external_id="one1") == ["one1"]
    assert external_ids(external_id="nothing") == []


# --- pagination --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "filtered"),
    [
        ("prompts", False),
        ("comparisons", False),
        ("judgments", False),
        ("prompts", True),
        ("comparisons", True),
        ("judgments", True),
    ],
)
def test_cursor_walks_every_row_once_while_new_rows_arrive(
    admin_client: Client, project: Project, make_user: Any, kind: str, filtered: bool
) -> None:
    project.overlap_k = 2
    project.save(update_fields=["overlap_k"])
    before = seed_pairs(project, 2, prefix="before")
    first = seed_pairs(project, 11, prefix="first")
    users = [make_user(f"u{i}") for i in range(2)]
    for user in users:
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
    for i, comparison in enumerate(Comparison.objects.filter(project=project).order_by("id")):
        judge(comparison, users[i % 2], "A")
        if i % 3 == 0:  # some comparisons with two judgments (two rows per comparison)
            judge(comparison, users[(i + 1) % 2], "B")
    filters: dict[str, Any] = {}
    if filtered:
        filters = {"batch": first.batch_id}
        if kind == "comparisons":
            filters["agreement_min"] = 0.4
    expected = ids(admin_client, project, kind, limit=200, **filters)
    everything = ids(admin_client, project, kind, limit=200)
    assert len(expected) >= 11 and (len(everything) > len(expected)) == filtered
    assert before.batch_id

    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **filters}
        if cursor:
            params["cursor"] = cursor
        body = get_ok(admin_client, url(project, kind, **params))
        seen += [r["id"] for r in body["results"]]
        pages += 1
        # new rows between pages: newer than every row walked, so never on a later page
        more = seed_pairs(project, 1, prefix=f"late{pages}")
        late = Comparison.objects.get(batch_id=more.batch_id or 0)
        judge(late, users[0], "B")
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == -(-len(expected) // 3)
    assert seen == expected
    assert len(set(seen)) == len(seen)


def test_a_full_page_that_ends_the_list_has_no_next_cursor(
    admin_client: Client, project: Project
) -> None:
    seed_pairs(project, 4)
    body = get_ok(admin_client, url(project, "comparisons", limit=4))
    assert len(body["results"]) == 4 and body["next_cursor"] is None
    body = get_ok(admin_client, url(project, "comparisons", limit=3))
    assert len(body["results"]) == 3 and body["next_cursor"]


# --- bad input ---------------------------------------------------------------------------------

BAD = [
    ("comparisons", "batch", "x"),
    ("comparisons", "batch", "0"),
    ("comparisons", "batch", "99999999999999999999999"),
    ("comparisons", "annotator", "-1"),
    ("comparisons", "prompt", "1.5"),
    ("comparisons", "status", "finished"),
    ("comparisons", "gold", "maybe"),
    ("comparisons", "agreement_min", "1.5"),
    ("comparisons", "agreement_max", "-0.1"),
    ("comparisons", "agreement_min", "nan"),
    ("comparisons", "agreement_max", "abc"),
    ("comparisons", "limit", "0"),
    ("comparisons", "limit", "201"),
    ("comparisons", "cursor", "garbage!"),
    ("comparisons", "cursor", encode_cursor("judgments", 5)),
    ("comparisons", "colour", "red"),
    ("prompts", "status", "open"),
    ("prompts", "batch", "one"),
    ("prompts", "cursor", encode_cursor("comparisons", 5)),
    ("judgments", "choice", "left"),
    ("judgments", "comparison", "abc"),
    ("judgments", "agreement_min", "0.5"),
    ("judgments", "cursor", "anVkZ21lbnRzOi0x"),  # "judgments:-1"
    ("judgments", "cursor", encode_cursor("judgments", 5, 4)),  # two keys, no batch filter
    ("prompts", "cursor", encode_cursor("prompts", 5, 4)),
    ("comparisons", "cursor", encode_cursor("comparisons", 1, 2, 3)),
]


@pytest.mark.parametrize(("kind", "field", "value"), BAD)
def test_a_bad_filter_or_cursor_is_a_400_naming_the_field(
    admin_client: Client, project: Project, kind: str, field: str, value: str
) -> None:
    response = admin_client.get(url(project, kind), {field: value})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["extra"]["fields"]
    assert field in body["message"]


def test_a_cursor_without_the_batch_filter_it_was_made_with_is_a_400(
    admin_client: Client, project: Project
) -> None:
    one_key = encode_cursor("judgments", 5)
    response = admin_client.get(url(project, "judgments", batch=1, cursor=one_key))
    assert response.status_code == 400
    assert "cursor" in response.json()["extra"]["fields"]


def test_an_agreement_range_upside_down_is_a_400(admin_client: Client, project: Project) -> None:
    response = admin_client.get(url(project, "comparisons", agreement_min=0.8, agreement_max=0.2))
    assert response.status_code == 400
    assert "agreement_min" in response.json()["extra"]["fields"]


# --- other projects and roles ------------------------------------------------------------------


def test_another_projects_comparison_is_a_404(
    admin_client: Client, data: Data, other_project: Project
) -> None:
    theirs = seed_pairs(other_project, 1)
    comparison = Comparison.objects.get(batch_id=theirs.batch_id or 0)
    response = admin_client.get(
        f"/api/projects/{data.project.id}/data/comparisons/{comparison.id}/"
    )
    assert response.status_code == 404
    missing = admin_client.get(f"/api/projects/{data.project.id}/data/comparisons/987654321/")
    assert missing.status_code == 404


def test_another_projects_rows_never_appear_even_when_filtered_by_their_batch(
    admin_client: Client, data: Data, other_project: Project
) -> None:
    theirs = seed_pairs(other_project, 2)
    for kind in LISTS:
        assert ids(admin_client, data.project, kind, batch=theirs.batch_id) == []
    all_ids = set(ids(admin_client, data.project, "comparisons", limit=200))
    assert not all_ids & set(
        Comparison.objects.filter(project=other_project).values_list("id", flat=True)
    )


def browse_urls(data: Data) -> list[str]:
    p = data.project.id
    return [
        f"/api/projects/{p}/data/prompts/",
        f"/api/projects/{p}/data/comparisons/",
        f"/api/projects/{p}/data/comparisons/{data.comparisons[0].id}/",
        f"/api/projects/{p}/data/judgments/",
    ]


@pytest.mark.parametrize("role", ["anonymous", "annotator", "other_admin"])
def test_refused_roles_get_403_everywhere(
    client: Client, data: Data, make_user: Any, other_project: Project, role: str
) -> None:
    if role == "annotator":
        client.force_login(data.users[0])
    elif role == "other_admin":
        other = make_user("other-admin")
        set_membership(project=other_project, user=other, role=Role.PROJECT_ADMIN)
        client.force_login(other)
    for path in browse_urls(data):
        assert client.get(path).status_code == 403, path


@pytest.mark.parametrize("role", ["project_admin", "ml_engineer", "superuser"])
def test_admins_ml_engineers_and_superusers_may_read(
    client: Client, data: Data, role: str, request: pytest.FixtureRequest, django_user_model: Any
) -> None:
    if role == "superuser":
        user = django_user_model.objects.create_superuser("root", "root@example.org", "x")
    else:
        user = request.getfixturevalue(role)
    client.force_login(user)
    for path in browse_urls(data):
        assert client.get(path).status_code == 200, path


# --- queries -----------------------------------------------------------------------------------


def queries_for(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("kind", LISTS)
def test_a_page_costs_the_same_queries_at_any_page_size(
    admin_client: Client, data: Data, kind: str
) -> None:
    p = data.project
    small = queries_for(admin_client, url(p, kind, limit=1))
    large = queries_for(admin_client, url(p, kind, limit=200))
    filtered = queries_for(
        admin_client,
        url(p, kind, limit=200, batch=data.batch1, **({"gold": "no"} if kind != "prompts" else {})),
    )
    assert small == large == filtered
    assert large <= 4  # session, user, membership, the page


def test_the_detail_costs_the_same_queries_for_any_number_of_judgments(
    admin_client: Client, data: Data
) -> None:
    path = f"/api/projects/{data.project.id}/data/comparisons/"
    many = queries_for(admin_client, path + f"{data.comparisons[0].id}/")
    none = queries_for(admin_client, path + f"{data.comparisons[4].id}/")
    c, revisions, _ = undo_and_resubmit_twice(data)
    undone = queries_for(admin_client, path + f"{c.id}/")
    assert len(revisions) == 2
    assert many == none == undone <= 9
