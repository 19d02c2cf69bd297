"""The leased queue's rules, on whichever database the suite runs."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from annotation import queue
from annotation.models import Assignment, AssignmentStatus, Comparison, Judgment, Project
from annotation.queue import JudgmentInput
from annotation.roles import Role
from annotation.services import set_membership
from preflab.errors import NotFoundError
from tests.annotation.factories import seed_pairs

pytestmark = pytest.mark.django_db

LEFT = JudgmentInput(choice="left", strength=3, time_taken_ms=1200)


@pytest.fixture
def annotators(make_user: Any, project: Project) -> list[Any]:
    users = [make_user(f"a{i}") for i in range(4)]
    for user in users:
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
    return users


def judge_all(project: Project, user: Any) -> int:
    done = 0
    while (a := queue.lease_next(project_id=project.id, user=user)) is not None:
        queue.submit_judgment(project_id=project.id, assignment_id=a.id, user=user, data=LEFT)
        done += 1
    return done


def test_refresh_returns_the_same_live_lease(project: Project, annotator: Any) -> None:
    seed_pairs(project, 3)
    first = queue.lease_next(project_id=project.id, user=annotator)
    again = queue.lease_next(project_id=project.id, user=annotator)
    assert first is not None and again is not None
    assert again.id == first.id


def test_prefetch_gives_a_second_lease_and_no_more(project: Project, annotator: Any) -> None:
    seed_pairs(project, 5)
    current = queue.lease_next(project_id=project.id, user=annotator)
    assert current is not None
    prefetched = queue.lease_next(project_id=project.id, user=annotator, exclude=[current.id])
    assert prefetched is not None and prefetched.comparison_id != current.comparison_id
    third = queue.lease_next(
        project_id=project.id, user=annotator, exclude=[current.id, prefetched.id]
    )
    assert third is None
    assert Assignment.objects.filter(annotator=annotator, status="active").count() == 2


def test_each_comparison_gets_exactly_k_judgments_and_nobody_twice(
    project: Project, annotators: list[Any]
) -> None:
    seed_pairs(project, 6)
    done = [judge_all(project, user) for user in annotators]
    assert sum(done) == 6 * project.overlap_k
    assert done[-1] == 0  # k=3: the fourth annotator finds nothing left
    for c in Comparison.objects.filter(project=project):
        assert c.judgment_count == 3 and c.lease_count == 0
        assert Judgment.objects.filter(comparison=c).count() == 3


def test_partly_judged_comparisons_are_served_first(
    project: Project, annotators: list[Any]
) -> None:
    seed_pairs(project, 10)
    a = queue.lease_next(project_id=project.id, user=annotators[0])
    assert a is not None
    queue.submit_judgment(project_id=project.id, assignment_id=a.id, user=annotators[0], data=LEFT)
    b = queue.lease_next(project_id=project.id, user=annotators[1])
    assert b is not None and b.comparison_id == a.comparison_id


def test_submit_is_idempotent(project: Project, annotator: Any) -> None:
    seed_pairs(project, 2)
    a = queue.lease_next(project_id=project.id, user=annotator)
    assert a is not None
    first, created = queue.submit_judgment(
        project_id=project.id, assignment_id=a.id, user=annotator, data=LEFT
    )
    again, created_again = queue.submit_judgment(
        project_id=project.id,
        assignment_id=a.id,
        user=annotator,
        data=JudgmentInput(choice="right", strength=1),
    )
    assert created and not created_again
    assert again.id == first.id and again.choice == first.choice
    assert Comparison.objects.get(pk=a.comparison_id).judgment_count == 1


def test_choice_is_stored_in_canonical_terms(project: Project, annotator: Any) -> None:
    seed_pairs(project, 1)
    a = queue.lease_next(project_id=project.id, user=annotator)
    assert a is not None
    judgment, _ = queue.submit_judgment(
        project_id=project.id, assignment_id=a.id, user=annotator, data=LEFT
    )
    assert judgment.choice == ("B" if a.swapped else "A")
    assert judgment.swapped == a.swapped


def test_someone_elses_lease_cannot_be_submitted(project: Project, annotators: list[Any]) -> None:
    seed_pairs(project, 1)
    a = queue.lease_next(project_id=project.id, user=annotators[0])
    assert a is not None
    with pytest.raises(NotFoundError):
        queue.submit_judgment(
            project_id=project.id, assignment_id=a.id, user=annotators[1], data=LEFT
        )


def test_expired_lease_frees_its_slot_and_late_submit_is_accepted_while_free(
    project: Project, annotators: list[Any]
) -> None:
    seed_pairs(project, 1)
    late = queue.lease_next(project_id=project.id, user=annotators[0])
    assert late is not None
    future = timezone.now() + timedelta(seconds=project.lease_ttl_seconds + 1)
    assert queue.expire_overdue_leases(now=future) == 1
    assert Assignment.objects.get(pk=late.id).status == AssignmentStatus.EXPIRED
    assert Comparison.objects.get(pk=late.comparison_id).lease_count == 0
    _, created = queue.submit_judgment(
        project_id=project.id, assignment_id=late.id, user=annotators[0], data=LEFT
    )
    assert created


def test_late_submit_after_the_slots_are_taken_is_a_conflict(
    project: Project, annotators: list[Any]
) -> None:
    seed_pairs(project, 1)
    late = queue.lease_next(project_id=project.id, user=annotators[0])
    assert late is not None
    queue.expire_overdue_leases(now=timezone.now() + timedelta(hours=1))
    for user in annotators[1:]:
        judge_all(project, user)
    with pytest.raises(queue.LeaseExpired):
        queue.submit_judgment(
            project_id=project.id, assignment_id=late.id, user=annotators[0], data=LEFT
        )
    assert Comparison.objects.get(pk=late.comparison_id).judgment_count == 3


def test_own_expired_lease_is_replaced_on_next(project: Project, annotator: Any) -> None:
    seed_pairs(project, 2)
    first = queue.lease_next(project_id=project.id, user=annotator)
    assert first is not None
    later = timezone.now() + timedelta(seconds=project.lease_ttl_seconds + 5)
    second = queue.lease_next(project_id=project.id, user=annotator, now=later)
    assert second is not None and second.id != first.id
    assert Assignment.objects.get(pk=first.id).status == AssignmentStatus.EXPIRED


def test_skip_frees_the_slot_and_never_serves_it_again(project: Project, annotator: Any) -> None:
    seed_pairs(project, 1)
    a = queue.lease_next(project_id=project.id, user=annotator)
    assert a is not None
    queue.skip_assignment(
        project_id=project.id, assignment_id=a.id, user=annotator, reason="offensive"
    )
    assert Comparison.objects.get(pk=a.comparison_id).lease_count == 0
    assert queue.lease_next(project_id=project.id, user=annotator) is None
    with pytest.raises(queue.LeaseClosed):
        queue.submit_judgment(project_id=project.id, assignment_id=a.id, user=annotator, data=LEFT)


def test_release_gives_the_item_back(project: Project, annotator: Any) -> None:
    seed_pairs(project, 1)
    a = queue.lease_next(project_id=project.id, user=annotator)
    assert a is not None
    queue.release_assignment(project_id=project.id, assignment_id=a.id, user=annotator)
    again = queue.lease_next(project_id=project.id, user=annotator)
    assert again is not None and again.comparison_id == a.comparison_id


def test_gold_items_are_injected_and_not_capped_by_k(
    project: Project, annotators: list[Any]
) -> None:
    project.gold_rate = 1.0
    project.save(update_fields=["gold_rate"])
    seed_pairs(project, 3, gold={0: "A"})
    for user in annotators:
        a = queue.lease_next(project_id=project.id, user=user)
        assert a is not None and a.is_gold
        queue.submit_judgment(project_id=project.id, assignment_id=a.id, user=user, data=LEFT)
    gold = Comparison.objects.get(project=project, is_gold=True)
    assert gold.judgment_count == len(annotators)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (JudgmentInput(choice="left"), "strength"),
        (JudgmentInput(choice="tie", strength=2), "strength"),
        (JudgmentInput(choice="sideways"), "choice"),
    ],
)
def test_judgment_is_checked_against_the_label_scheme(
    project: Project, annotator: Any, data: JudgmentInput, field: str
) -> None:
    seed_pairs(project, 1)
    a = queue.lease_next(project_id=project.id, user=annotator)
    assert a is not None
    with pytest.raises(queue.InvalidJudgment) as caught:
        queue.submit_judgment(project_id=project.id, assignment_id=a.id, user=annotator, data=data)
    assert field in caught.value.extra["fields"]
    assert Judgment.objects.count() == 0


def test_scheme_without_ties_and_with_required_rationale(project: Project, annotator: Any) -> None:
    project.allow_tie = False
    project.rationale_mode = "required"
    project.save()
    seed_pairs(project, 1)
    a = queue.lease_next(project_id=project.id, user=annotator)
    assert a is not None
    with pytest.raises(queue.InvalidJudgment) as caught:
        queue.submit_judgment(
            project_id=project.id,
            assignment_id=a.id,
            user=annotator,
            data=JudgmentInput(choice="tie"),
        )
    assert set(caught.value.extra["fields"]) == {"choice", "rationale"}


def test_non_annotators_cannot_lease(project: Project, project_admin: Any) -> None:
    seed_pairs(project, 1)
    with pytest.raises(queue.NotAnAnnotator):
        queue.lease_next(project_id=project.id, user=project_admin)


def test_consecutive_items_come_from_different_prompts_while_others_are_open(
    project: Project, annotator: Any
) -> None:
    from annotation.importing import ImportOptions, Pairing, import_comparisons
    from tests.annotation.factories import jsonl

    rows = [
        {"id": f"q{i}", "prompt": f"Question {i}?", "responses": [f"a{i}", f"b{i}", f"c{i}"]}
        for i in range(2)
    ]
    import_comparisons(
        project=project, stream=jsonl(*rows), options=ImportOptions(pairing=Pairing.ALL_PAIRS)
    )
    assert Comparison.objects.filter(project=project).count() == 6  # 3 pairs per prompt
    prompts = []
    while (lease := queue.lease_next(project_id=project.id, user=annotator)) is not None:
        prompts.append(Comparison.objects.get(pk=lease.comparison_id).prompt_id)
        queue.submit_judgment(
            project_id=project.id,
            assignment_id=lease.id,
            user=annotator,
            data=JudgmentInput(choice="left", strength=3),
        )
    assert len(prompts) == 6
    # the two prompts alternate: never the same prompt twice in a row while the other has work
    assert all(a != b for a, b in itertools.pairwise(prompts))
