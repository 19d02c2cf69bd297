"""``manage.py seed_demo``: both demo projects, weeks of simulated judgments written through
the queue (consistent leases, complete overlap), a quality history of several weeks, round
defaults that fit the loop project, idempotence; and the loop project's first round trains
on a real split: its default export has a test split of a useful size, and the reward model
the defaults train reaches a meaningful held-out accuracy."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count, F
from django.test import Client
from django.utils import timezone

from annotation.export import create_export
from annotation.export_options import parse_export_options
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Judgment,
    Project,
    ProjectMembership,
    QualitySnapshot,
)
from annotation.simulation import RULES
from training.demo import ANNOTATORS, LOOP_OVERLAP, LOOP_PROJECT, POLICY_NAME, seed_loop_project
from training.ml.reward import parse_config, train_reward_model
from training.ml.synthetic import WORDS
from training.models import ModelArtifact, RoundDefaults
from training.registry import artifact_dir

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def _state() -> dict[str, Any]:
    """What seeding writes, in enough detail that any change shows."""
    return {
        "users": sorted(get_user_model().objects.values_list("username", flat=True)),
        "projects": sorted(Project.objects.values_list("id", "name")),
        "memberships": sorted(
            ProjectMembership.objects.values_list("project_id", "user_id", "role")
        ),
        "comparisons": Comparison.objects.count(),
        "judgments": sorted(Judgment.objects.values_list("id", "created_at", "choice")),
        "assignments": Assignment.objects.count(),
        "artifacts": sorted(ModelArtifact.objects.values_list("id", "path")),
        "defaults": sorted(RoundDefaults.objects.values_list("project_id", "base_policy_id")),
        "snapshots": sorted(QualitySnapshot.objects.values_list("id", "judgment_count")),
    }


def test_seed_demo_builds_a_loop_project_with_weeks_of_history_and_is_idempotent(
    settings: Any, tmp_path: Path
) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    printed = out.getvalue()

    assert Project.objects.filter(name="Demo: assistant helpfulness").exists()
    loop = Project.objects.get(name=LOOP_PROJECT)
    assert f"#{loop.id}: {LOOP_PROJECT}" in printed
    for username, _, _ in ANNOTATORS:
        assert f"  {username} " in printed
        assert ProjectMembership.objects.filter(
            project=loop, user__username=username, role="annotator"
        ).exists()

    # readable candidates from the tiny policy, every comparison judged by k annotators
    comparisons = Comparison.objects.filter(project=loop)
    assert comparisons.count() >= 400
    texts = [c.response_a.content for c in comparisons.select_related("response_a")[:100]]
    words = [w for t in texts for w in t.split()]
    assert words and sum(w in WORDS for w in words) / len(words) > 0.98
    assert not comparisons.exclude(judgment_count=LOOP_OVERLAP).exists()
    assert not comparisons.exclude(lease_count=0).exists()
    judgments = Judgment.objects.filter(project=loop)
    assert judgments.count() == LOOP_OVERLAP * comparisons.count()
    per_pair = judgments.values("comparison_id").annotate(n=Count("annotator_id", distinct=True))
    assert {row["n"] for row in per_pair} == {LOOP_OVERLAP}

    # each judgment closes its own lease at the moment it was made, in the past weeks
    assert (
        not Assignment.objects.filter(project=loop)
        .exclude(status=AssignmentStatus.SUBMITTED)
        .exists()
    )
    assert not judgments.exclude(assignment__closed_at=F("created_at")).exists()
    assert not judgments.filter(assignment__created_at__gt=F("created_at")).exists()
    times = sorted(judgments.values_list("created_at", flat=True))
    assert times[-1] < timezone.now()
    assert times[-1] - times[0] >= timedelta(weeks=3)

    # the simulated annotators follow the gold rule, mostly
    rule = RULES["gold_words"].score
    majority_right = 0
    decided = 0
    for c in comparisons.select_related("response_a", "response_b"):
        a, b = rule(c.response_a.content), rule(c.response_b.content)
        if a == b:
            continue
        votes = list(judgments.filter(comparison=c).values_list("choice", flat=True))
        decided += 1
        majority_right += votes.count("A" if a > b else "B") >= 2
    assert majority_right / decided > 0.85

    # the dashboard's history: one point per week, each with an agreement figure
    priya = get_user_model().objects.get(username="priya")
    client = Client()
    client.force_login(priya)
    body = client.get(f"/api/projects/{loop.id}/quality/").json()
    assert body["stale"] is False and body["data"]["summary"]["judgments"] == judgments.count()
    weeks = body["data"]["weeks"]
    assert len(weeks) >= 3
    assert all(w["alpha_nominal"]["value"] is not None for w in weeks)
    assert sum(w["judgments"] for w in weeks) == judgments.count()
    flagged = {a["username"] for a in body["data"]["annotators"] if a["flags"]}
    assert "hana" in flagged  # the hasty one

    # the console's round defaults fit the project: its starting policy, its settings
    client.force_login(get_user_model().objects.get(username="mlee"))
    defaults = client.get(f"/api/projects/{loop.id}/rounds/defaults/").json()
    policy = ModelArtifact.objects.get(pk=defaults["base_policy"])
    assert policy.name == POLICY_NAME and policy.project_id == loop.id
    assert defaults["config"]["reward"]["learning_rate"] == 0.003
    assert defaults["config"]["export"]["test_fraction"] > 0

    before = _state()
    again = io.StringIO()
    call_command("seed_demo", stdout=again)
    assert _state() == before
    assert "(new)" not in again.getvalue()


@pytest.mark.timeout(900)  # the round's reward training, in full: minutes on a busy CPU
def test_the_loop_projects_first_round_trains_on_a_real_split(
    settings: Any, tmp_path: Path, make_user: Any
) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    engineer = make_user("engineer")
    report = seed_loop_project(
        password="unused-in-this-test", admin=make_user("admin"), engineer=engineer, humans=[]
    )
    client = Client()
    client.force_login(engineer)
    defaults = client.get(f"/api/projects/{report.project.id}/rounds/defaults/").json()
    export = create_export(
        project=report.project,
        options=parse_export_options(defaults["config"]["export"]),
        user=engineer,
    )
    assert export.train_rows >= 300
    assert export.test_rows >= 40  # a held-out accuracy worth reading
    assert export.test_rows <= 0.3 * (export.train_rows + export.test_rows)

    folder = Path(settings.ARTIFACT_ROOT) / export.path
    metrics = train_reward_model(
        base=artifact_dir(ModelArtifact.objects.get(pk=defaults["base_policy"])),
        train_file=folder / "train.jsonl",
        eval_file=folder / "test.jsonl",
        out=tmp_path / "reward",
        config=parse_config(defaults["config"]["reward"]),
    )
    assert metrics["eval"]["accuracy"] >= 0.65, metrics["eval"]
