"""The per-annotator page: every figure on a hand-built project whose answers are known, the
same definitions as the quality dashboard, roles, 404 for users of other projects, and a
query count that does not grow with the judgments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from scipy.stats import beta

from annotation.annotator_selectors import annotator_page
from annotation.models import Assignment, Comparison, Judgment, Project
from annotation.quality import recompute_quality
from annotation.roles import Role
from annotation.services import (
    create_project,
    exclude_annotator,
    revoke_exclusion,
    set_membership,
)
from tests.annotation.factories import seed_pairs

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
WEEK_1 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # Monday
WEEK_2 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Monday


def add_judgment(
    comparison: Comparison,
    user: Any,
    choice: str,
    *,
    swapped: bool = False,
    ms: int | None = 3000,
    at: datetime = WEEK_2,
) -> Judgment:
    """A submitted lease and its judgment, with the counter moved as the queue does."""
    assignment = Assignment.objects.create(
        project=comparison.project,
        comparison=comparison,
        annotator=user,
        status="submitted",
        swapped=swapped,
        expires_at=at,
        closed_at=at,
    )
    judgment = Judgment.objects.create(
        assignment=assignment,
        project=comparison.project,
        comparison=comparison,
        annotator=user,
        choice=choice,
        strength=None if choice in ("tie", "both_bad") else 3,
        time_taken_ms=ms,
        swapped=swapped,
    )
    Judgment.objects.filter(pk=judgment.pk).update(created_at=at)
    Comparison.objects.filter(pk=comparison.pk).update(judgment_count=comparison.judgments.count())
    return judgment


class Fixture:
    def __init__(self, project: Project, make_user: Any, admin: Any) -> None:
        self.project = project
        seed_pairs(project, 5, gold={3: "A", 4: "B"})
        by_prompt = {c.prompt.external_id: c for c in Comparison.objects.filter(project=project)}
        r0, r1, r2, g_a, g_b = (by_prompt[f"p{i}"] for i in range(5))
        self.ann, bo, cy = (make_user(n) for n in ("ann", "bo", "cy"))
        for user in (self.ann, bo, cy):
            set_membership(project=project, user=user, role=Role.ANNOTATOR)
        hour = timedelta(hours=1)
        # week 1: R0 all agree; R1 ann alone against two
        self.r0 = add_judgment(r0, self.ann, "A", ms=2000, at=WEEK_1)
        add_judgment(r0, bo, "A", at=WEEK_1)
        add_judgment(r0, cy, "A", at=WEEK_1)
        self.r1 = add_judgment(r1, self.ann, "B", ms=4000, at=WEEK_1 + timedelta(days=1))
        add_judgment(r1, bo, "A", at=WEEK_1 + timedelta(days=1))
        add_judgment(r1, cy, "A", at=WEEK_1 + timedelta(days=1))
        # week 2: R2 the others split (no majority); two gold items, one right, one wrong
        self.r2 = add_judgment(r2, self.ann, "A", swapped=True, ms=6000, at=WEEK_2)
        add_judgment(r2, bo, "A", at=WEEK_2)
        add_judgment(r2, cy, "B", at=WEEK_2)
        self.g_a = add_judgment(g_a, self.ann, "A", ms=10000, at=WEEK_2 + hour)
        add_judgment(g_a, bo, "B", at=WEEK_2 + hour)
        self.g_b = add_judgment(g_b, self.ann, "A", ms=None, at=WEEK_2 + timedelta(days=1))
        exclusion = exclude_annotator(
            project=project, annotator_id=self.ann.id, reason="too fast", by=admin
        )
        revoke_exclusion(project=project, exclusion_id=exclusion.id, reason="checked", by=admin)


@pytest.fixture
def fixture(project: Project, make_user: Any, project_admin: Any) -> Fixture:
    return Fixture(project, make_user, project_admin)


def test_figures_on_a_known_project(fixture: Fixture) -> None:
    page = annotator_page(project_id=fixture.project.id, user_id=fixture.ann.id, now=NOW)
    assert page.annotator == {
        "id": fixture.ann.id,
        "username": "ann",
        "role": "annotator",
        "excluded": False,
    }

    throughput = page.throughput
    assert throughput["days"] == 30 and len(throughput["per_day"]) == 30
    assert throughput["per_day"][-1]["day"] == "2026-11-25"
    by_day = {d["day"]: d for d in throughput["per_day"] if d["judgments"]}
    assert {d: v["judgments"] for d, v in by_day.items()} == {
        "2026-11-16": 1,
        "2026-11-17": 1,
        "2026-11-23": 2,
        "2026-11-24": 1,
    }
    assert by_day["2026-11-23"]["median_seconds"] == 8.0  # 6 s and 10 s
    assert by_day["2026-11-24"]["median_seconds"] is None  # no time recorded
    assert throughput["judgments_total"] == throughput["judgments_in_range"] == 5
    assert throughput["median_seconds"] == 5.0  # 2, 4, 6, 10

    week_1, week_2 = page.agreement_weeks
    assert week_1 == {
        "week": "2026-11-16",
        "judgments": 2,
        "consensus_agreement": 0.5,  # agrees on R0, not on R1
        "consensus_judgments": 2,
        "pairwise_agreement": 0.5,  # 2 of the 4 pairs (ann, other) agree
        "pairs": 4,
        "gold_correct": 0,
        "gold_total": 0,
    }
    assert week_2 == {
        "week": "2026-11-23",
        "judgments": 3,
        "consensus_agreement": None,  # the others split on R2: no majority to agree with
        "consensus_judgments": 0,
        "pairwise_agreement": 0.5,  # R2: agrees with bo, not with cy; gold items not paired
        "pairs": 2,
        "gold_correct": 1,
        "gold_total": 2,
    }
    assert page.gold == {"correct": 1, "total": 2, "accuracy": 0.5}

    # left picks: R0 (A, not swapped), G_A and G_B (A); right: R1 (B), R2 (A shown right)
    bias = page.position_bias
    assert (bias["left"], bias["right"], bias["decided"]) == (3, 2, 5)
    assert bias["left_share"] == 0.6 and bias["deviation"] == 0.1
    assert bias["p_value"] == 1.0  # 3 of 5 is as likely as can be under p = 0.5
    assert bias["ci_low"] == pytest.approx(beta.ppf(0.025, 3, 3), abs=1e-4)
    assert bias["ci_high"] == pytest.approx(beta.ppf(0.975, 4, 2), abs=1e-4)

    recent = page.recent
    assert [r["judgment_id"] for r in recent] == [
        fixture.g_b.id,
        fixture.g_a.id,
        fixture.r2.id,
        fixture.r1.id,
        fixture.r0.id,
    ]
    assert [r["agrees_with_consensus"] for r in recent] == [None, None, None, False, True]
    assert [r["gold_correct"] for r in recent] == [False, True, None, None, None]
    r2 = recent[2]
    assert r2["display_choice"] == "right" and r2["choice"] == "A"
    assert r2["prompt_external_id"] == "p2" and r2["time_taken_ms"] == 6000

    (exclusion,) = page.exclusions
    assert exclusion.reason == "too fast" and exclusion.revoke_reason == "checked"
    assert exclusion.revoked_at is not None


def test_the_same_definitions_as_the_quality_dashboard(fixture: Fixture) -> None:
    page = annotator_page(project_id=fixture.project.id, user_id=fixture.ann.id, now=NOW)
    dashboard = recompute_quality(project_id=fixture.project.id).payload
    (row,) = [r for r in dashboard["annotators"] if r["annotator_id"] == fixture.ann.id]
    decided = [w for w in page.agreement_weeks if w["consensus_judgments"]]
    overall = sum(w["consensus_agreement"] * w["consensus_judgments"] for w in decided) / sum(
        w["consensus_judgments"] for w in decided
    )
    assert overall == row["consensus_agreement"]
    assert page.gold["accuracy"] == row["gold_accuracy"]
    assert page.position_bias["left_share"] == row["left_share"]
    assert page.position_bias["p_value"] == row["position_p_value"]
    assert page.throughput["median_seconds"] == row["median_seconds"]


def test_an_excluded_other_annotator_is_left_out_of_the_consensus(
    fixture: Fixture, project_admin: Any
) -> None:
    cy = Judgment.objects.filter(project=fixture.project, annotator__username="cy").first()
    assert cy is not None
    exclude_annotator(
        project=fixture.project, annotator_id=cy.annotator_id, reason="x", by=project_admin
    )
    page = annotator_page(project_id=fixture.project.id, user_id=fixture.ann.id, now=NOW)
    week_1, week_2 = page.agreement_weeks
    # only bo counts now: R0 agree, R1 disagree, R2 agree (bo said A)
    assert (week_1["consensus_agreement"], week_1["pairs"]) == (0.5, 2)
    assert (week_2["consensus_agreement"], week_2["pairwise_agreement"]) == (1.0, 1.0)


def url(project: Project, user_id: int, query: str = "") -> str:
    return f"/api/projects/{project.id}/annotators/{user_id}/{query}"


def test_api_renders_the_page(client: Client, fixture: Fixture, project_admin: Any) -> None:
    client.force_login(project_admin)
    response = client.get(url(fixture.project, fixture.ann.id, "?days=7"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {
        "annotator",
        "throughput",
        "agreement_weeks",
        "gold",
        "position_bias",
        "recent",
        "exclusions",
    }
    assert len(body["throughput"]["per_day"]) == 7
    assert body["throughput"]["judgments_total"] == 5
    assert body["gold"] == {"correct": 1, "total": 2, "accuracy": 0.5}
    assert len(body["recent"]) == 5
    assert body["exclusions"][0]["reason"] == "too fast"
    assert body["exclusions"][0]["revoked_by"] == "padmin"
    assert body["exclusions"][0]["active"] is False


def test_a_superuser_sees_it(client: Client, fixture: Fixture, django_user_model: Any) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.org", "x")
    client.force_login(root)
    assert client.get(url(fixture.project, fixture.ann.id)).status_code == 200


def test_refused_roles(
    client: Client,
    fixture: Fixture,
    ml_engineer: Any,
    make_user: Any,
    other_project: Project,
) -> None:
    assert client.get(url(fixture.project, fixture.ann.id)).status_code == 403  # anonymous
    other_admin = make_user("other-admin")
    set_membership(project=other_project, user=other_admin, role=Role.PROJECT_ADMIN)
    for user in (fixture.ann, ml_engineer, other_admin):
        client.force_login(user)
        response = client.get(url(fixture.project, fixture.ann.id))
        assert response.status_code == 403, user


def test_users_not_of_this_project_are_not_found(
    client: Client, fixture: Fixture, project_admin: Any, make_user: Any, other_project: Project
) -> None:
    stranger = make_user("stranger")
    set_membership(project=other_project, user=stranger, role=Role.ANNOTATOR)
    client.force_login(project_admin)
    for user_id in (stranger.id, stranger.id + 1000):
        response = client.get(url(fixture.project, user_id))
        assert response.status_code == 404
        assert response.json()["code"] == "annotator_not_found"
    assert client.get(url(fixture.project, fixture.ann.id, "?days=0")).status_code == 400
    assert client.get(url(fixture.project, fixture.ann.id, "?days=x")).status_code == 400


def test_an_annotator_with_no_judgments_gets_an_empty_page(
    client: Client, project: Project, project_admin: Any, annotator: Any
) -> None:
    client.force_login(project_admin)
    body = client.get(url(project, annotator.id)).json()
    assert body["throughput"]["judgments_total"] == 0
    assert body["agreement_weeks"] == [] and body["recent"] == []
    assert body["position_bias"]["decided"] == 0 and body["position_bias"]["p_value"] is None
    assert body["gold"]["accuracy"] is None


def test_query_count_does_not_grow_with_judgments(
    client: Client, make_user: Any, project_admin: Any
) -> None:
    project = create_project(name="many", overlap_k=3)
    set_membership(project=project, user=project_admin, role=Role.PROJECT_ADMIN)
    seed_pairs(project, 80, gold={0: "A"})
    ann, bo = make_user("ann"), make_user("bo")
    for user in (ann, bo):
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
    comparisons = list(Comparison.objects.filter(project=project).order_by("id"))
    client.force_login(project_admin)
    counts = []
    for upto in (2, 80):
        for c in comparisons[:upto]:
            if not Judgment.objects.filter(comparison=c, annotator=ann).exists():
                add_judgment(c, ann, "A")
                add_judgment(c, bo, "B")
        exclusion = exclude_annotator(
            project=project, annotator_id=ann.id, reason="r", by=project_admin
        )
        revoke_exclusion(project=project, exclusion_id=exclusion.id, reason="", by=project_admin)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url(project, ann.id))
        assert response.status_code == 200
        counts.append(len(queries))
        assert len(response.json()["recent"]) == min(upto, 50)
    assert counts[0] == counts[1], counts
    assert counts[0] <= 9, counts
