"""The queue's invariants under real concurrency on PostgreSQL: 50 threads, each with its own
connection, race for the last slots and retry every submit; pairs of threads submit the same
lease at once (a double click)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections

from annotation import queue
from annotation.models import Assignment, Comparison, Judgment, Project
from annotation.queue import JudgmentInput
from annotation.roles import Role
from annotation.services import set_membership
from tests.annotation.factories import seed_pairs

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 50
CHOICE = JudgmentInput(choice="left", strength=2)


def work(project_id: int, user_id: int, barrier: threading.Barrier) -> list[tuple[int, int]]:
    """Judge until the queue is empty; returns the (judgment id, comparison id) accepted."""
    accepted: list[tuple[int, int]] = []
    user = get_user_model().objects.get(pk=user_id)
    barrier.wait()
    try:
        while (a := queue.lease_next(project_id=project_id, user=user)) is not None:
            # Every submit is retried (a lost response): the retry must not count twice.
            results = [_submit(project_id, a.id, user) for _ in range(2)]
            ids = {judgment_id for judgment_id, _ in results}
            assert len(ids) == 1, results
            assert sum(created for _, created in results) == 1, results
            accepted.append((results[0][0], a.comparison_id))
    finally:
        connections.close_all()
    return accepted


def _submit(project_id: int, assignment_id: int, user: Any) -> tuple[int, bool]:
    judgment, created = queue.submit_judgment(
        project_id=project_id, assignment_id=assignment_id, user=user, data=CHOICE
    )
    return judgment.id, created


@pytest.mark.slow
def test_never_more_than_k_never_twice_nothing_lost(project: Project, make_user: Any) -> None:
    assert connection.vendor == "postgresql"
    seed_pairs(project, 10)  # 10 comparisons × k=3 = 30 slots for 50 annotators
    users = [make_user(f"racer{i}") for i in range(THREADS)]
    for user in users:
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
    barrier = threading.Barrier(THREADS)
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(work, project.id, u.id, barrier) for u in users]
        accepted = [pair for f in futures for pair in f.result()]

    judgments = list(
        Judgment.objects.filter(project=project).values_list("id", "comparison_id", "annotator_id")
    )
    # no accepted submit lost, nothing extra stored
    assert sorted(j for j, _ in accepted) == sorted(j[0] for j in judgments)
    assert len(judgments) == 30
    # never more than k per comparison, counters agree with rows
    per_comparison = Counter(c for _, c, _ in judgments)
    assert set(per_comparison.values()) == {3}
    for c in Comparison.objects.filter(project=project):
        assert (c.judgment_count, c.lease_count) == (per_comparison[c.id], 0)
    # never twice by the same annotator
    assert len({(c, a) for _, c, a in judgments}) == len(judgments)
    assert not Assignment.objects.filter(project=project, status="active").exists()


@pytest.mark.slow
def test_simultaneous_double_submits_store_one_judgment(project: Project, make_user: Any) -> None:
    seed_pairs(project, 20)
    users = [make_user(f"clicker{i}") for i in range(20)]
    leases = []
    for user in users:
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
        lease = queue.lease_next(project_id=project.id, user=user)
        assert lease is not None
        leases.append((lease.id, user))
    barrier = threading.Barrier(40)

    def click(lease_id: int, user: Any) -> tuple[int, bool]:
        barrier.wait()
        try:
            return _submit(project.id, lease_id, user)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(40) as pool:
        futures = [pool.submit(click, lid, u) for lid, u in leases for _ in range(2)]
        results = [f.result() for f in futures]
    for i in range(0, 40, 2):
        (id1, created1), (id2, created2) = results[i], results[i + 1]
        assert id1 == id2
        assert created1 != created2
    assert Judgment.objects.filter(project=project).count() == 20
    assert (
        sum(Comparison.objects.filter(project=project).values_list("judgment_count", flat=True))
        == 20
    )
