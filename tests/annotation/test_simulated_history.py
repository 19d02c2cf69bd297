"""Simulated annotators judging over past weeks through the queue's services: complete and
consistent queues, timestamps inside the window on weekdays, the rule followed, the same
labels from the same seed, and bad arguments refused."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db.models import F

from annotation.importing import ImportOptions, import_comparisons
from annotation.models import Assignment, AssignmentStatus, Comparison, Judgment, Project
from annotation.roles import Role
from annotation.services import create_project, set_membership
from annotation.simulated_history import SimulatedAnnotator, judge_over_time
from annotation.simulation import InvalidSimulationConfig
from tests.annotation.factories import jsonl
from training.ml.synthetic import gold_score, random_answer

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
END = START + timedelta(weeks=4)


def word_project(name: str, n: int = 40) -> Project:
    project = create_project(name=name, overlap_k=2)
    rng = random.Random(5)
    rows = [
        {
            "id": f"q{i}",
            "prompt": "Say something.",
            "response_a": random_answer(rng),
            "response_b": random_answer(rng),
        }
        for i in range(n)
    ]
    import_comparisons(project=project, stream=jsonl(*rows), options=ImportOptions())
    return project


def crew(project: Project, make_user: Any, prefix: str, noise: float) -> list[SimulatedAnnotator]:
    out = []
    for i in range(3):
        user = make_user(f"{prefix}{i}")
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
        out.append(SimulatedAnnotator(user=user, noise=noise, median_seconds=6.0))
    return out


def labels(project: Project) -> list[tuple[str, str, str, int | None]]:
    """(pair's external id, annotator's position in the crew, canonical choice, strength)."""
    return sorted(
        (
            j.comparison.prompt.external_id + j.comparison.response_a.content,
            j.annotator.username[-1],
            j.choice,
            j.strength,
        )
        for j in Judgment.objects.filter(project=project).select_related(
            "comparison__prompt", "comparison__response_a", "annotator"
        )
    )


def test_every_slot_is_judged_inside_the_window_through_consistent_leases(
    make_user: Any,
) -> None:
    project = word_project("history")
    report = judge_over_time(
        project=project, annotators=crew(project, make_user, "a", 0.0), start=START, end=END
    )
    comparisons = Comparison.objects.filter(project=project)
    assert report.judgments == 2 * comparisons.count() == Judgment.objects.count()
    assert not comparisons.exclude(judgment_count=2).exists()
    assert not comparisons.exclude(lease_count=0).exists()
    assert not Assignment.objects.exclude(status=AssignmentStatus.SUBMITTED).exists()
    judgments = Judgment.objects.filter(project=project)
    assert not judgments.exclude(assignment__closed_at=F("created_at")).exists()
    times = list(judgments.values_list("created_at", flat=True))
    assert all(START <= t < END + timedelta(hours=1) and t.weekday() < 5 for t in times)
    assert max(times) - min(times) > timedelta(weeks=2)  # spread, not one burst
    millis = [ms or 0 for ms in judgments.values_list("time_taken_ms", flat=True)]
    assert all(1.0 < ms / 1000 < 40.0 for ms in millis)
    # noiseless annotators answer by the rule: the gold-better side, a tie when equal
    assert report.agreement == 1.0
    for c in comparisons.select_related("response_a", "response_b"):
        a, b = gold_score(c.response_a.content), gold_score(c.response_b.content)
        expected = "A" if a > b else "B" if b > a else "tie"
        assert set(c.judgments.values_list("choice", flat=True)) == {expected}


def test_the_same_seed_gives_the_same_labels_and_noise_shows(make_user: Any) -> None:
    one, two = word_project("one"), word_project("two")
    first, second = (
        judge_over_time(
            project=project,
            annotators=crew(project, make_user, prefix, 0.3),
            start=START,
            end=END,
            seed=3,
            noise_trend=(1.5, 0.5),
        )
        for project, prefix in ((one, "x"), (two, "y"))
    )
    assert labels(one) == labels(two)
    assert first.agreement == second.agreement
    assert first.agreement is not None and 0.5 < first.agreement < 0.95


def test_bad_arguments_are_refused(make_user: Any) -> None:
    project = word_project("bad", n=2)
    annotators = crew(project, make_user, "b", 0.0)
    with pytest.raises(InvalidSimulationConfig):
        judge_over_time(project=project, annotators=[], start=START, end=END)
    with pytest.raises(InvalidSimulationConfig):
        judge_over_time(project=project, annotators=annotators, start=END, end=START)
    with pytest.raises(InvalidSimulationConfig):
        judge_over_time(
            project=project, annotators=annotators, start=START, end=END, rule="shortest"
        )
    saturday = datetime(2026, 3, 7, tzinfo=UTC)
    with pytest.raises(InvalidSimulationConfig, match="weekday"):
        judge_over_time(
            project=project,
            annotators=annotators,
            start=saturday,
            end=saturday + timedelta(days=2),
        )
    assert not Judgment.objects.exists()
