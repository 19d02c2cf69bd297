"""Undo of an annotator's latest judgment: the judgment becomes a revision, the lease is live
again, and the page shows the same item with the undone answer as a draft.

Allowed only to the judgment's own annotator (not excluded), for their latest judgment in the
project, within ``PREFLAB_UNDO_WINDOW_SECONDS`` (default 120) of its submit, and while the
comparison has fewer than k judgments. The queue's invariants (``annotation.queue``) hold:
the comparison row is locked and its counters move in the same transaction — one judgment
back to one lease, so the slots taken never change.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation import queue
from annotation import queue_sql as sql
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Judgment,
    JudgmentRevision,
)
from annotation.roles import Role
from preflab.errors import ConflictError, NotFoundError

DEFAULT_UNDO_WINDOW_SECONDS = 120


def undo_window_seconds() -> int:
    """How long after a submit the annotator may take it back (a site setting)."""
    configured: Any = getattr(settings, "PREFLAB_UNDO_WINDOW_SECONDS", None)
    if configured is None:
        configured = os.environ.get("PREFLAB_UNDO_WINDOW_SECONDS", DEFAULT_UNDO_WINDOW_SECONDS)
    return int(configured)


class NotYourJudgment(NotFoundError):
    code = "not_your_judgment"


class NotJudged(ConflictError):
    code = "not_judged"


class AlreadyUndone(ConflictError):
    code = "already_undone"


class UndoWindowPassed(ConflictError):
    code = "undo_window_passed"


class NotLatestJudgment(ConflictError):
    code = "not_latest_judgment"


class ComparisonComplete(ConflictError):
    code = "comparison_complete"


@dataclass(frozen=True)
class UndoResult:
    """The reopened lease and the revision that keeps the undone answer."""

    lease: queue.Lease
    revision: JudgmentRevision


@transaction.atomic
def undo_judgment(
    *, project_id: int, assignment_id: int, user: Any, now: datetime | None = None
) -> UndoResult:
    """Take back the judgment of ``assignment_id``; its lease is live again."""
    now = now or timezone.now()
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .filter(pk=assignment_id, project_id=project_id, annotator_id=user.pk)
        .first()
    )
    if assignment is None:
        raise NotYourJudgment("No judgment of yours answers this assignment in this project.")
    # the membership row is the lock ``lease_next`` takes per annotator: live leases are
    # counted below without a concurrent ``next`` adding one
    member = sql.fetchone(sql.MEMBERSHIP_FOR_UPDATE + sql.lock_clause("m"), [project_id, user.pk])
    if member is None or member[0] != Role.ANNOTATOR:
        raise queue.NotAnAnnotator("Only the project's annotators undo judgments.")
    if member[1]:
        raise queue.AnnotatorExcluded(
            "A project admin excluded you from this project's queue; your judgments stand."
        )
    if member[2]:
        raise queue.ProjectArchived("This project is archived: it takes no more judgments.")
    scheme = sql.scheme_from(member[3:])
    judgment = Judgment.objects.filter(assignment=assignment).first()
    if judgment is None:
        undone = JudgmentRevision.objects.filter(assignment=assignment)
        if undone.filter(resubmitted_judgment_id=None).exists():
            raise AlreadyUndone("This judgment is already undone; judge the item again.")
        raise NotJudged(f"This lease is {assignment.status}; it holds no judgment to undo.")
    window = undo_window_seconds()
    if now - judgment.created_at > timedelta(seconds=window):
        raise UndoWindowPassed(
            f"A judgment can be undone only within {window} seconds of its submit.",
            extra={"window_seconds": window, "judged_at": judgment.created_at.isoformat()},
        )
    latest = (
        Judgment.objects.filter(project_id=project_id, annotator_id=user.pk)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
        .first()
    )
    if latest != judgment.pk:
        raise NotLatestJudgment("Only your latest judgment can be undone.")
    counts = (
        Comparison.objects.select_for_update()
        .filter(pk=assignment.comparison_id)
        .values_list("judgment_count", "target_votes")
        .get()
    )
    if counts[0] >= counts[1]:
        raise ComparisonComplete(
            "This comparison already has all its judgments; its votes are final.",
            extra={"judgments": counts[0], "k": counts[1]},
        )

    revision = JudgmentRevision.objects.create(
        project_id=project_id,
        assignment=assignment,
        comparison_id=assignment.comparison_id,
        annotator_id=user.pk,
        judgment_id_was=judgment.pk,
        choice=judgment.choice,
        strength=judgment.strength,
        rationale=judgment.rationale,
        time_taken_ms=judgment.time_taken_ms,
        swapped=judgment.swapped,
        judged_at=judgment.created_at,
        undone_by=user,
        undone_at=now,
    )
    judgment.delete()
    # one judgment back to one lease: the slots taken (judgments + leases) stay the same
    Comparison.objects.filter(pk=assignment.comparison_id).update(
        judgment_count=F("judgment_count") - 1, lease_count=F("lease_count") + 1
    )
    assignment.status = AssignmentStatus.ACTIVE
    assignment.closed_at = None
    assignment.expires_at = now + timedelta(seconds=scheme.lease_ttl_seconds)
    assignment.save(update_fields=["status", "closed_at", "expires_at"])
    _keep_live_lease_limit(project_id=project_id, user_id=user.pk, keep=assignment.pk, now=now)
    return UndoResult(lease=queue._load_lease(assignment.pk, scheme), revision=revision)


def _keep_live_lease_limit(*, project_id: int, user_id: int, keep: int, now: datetime) -> None:
    """Expire the annotator's overdue leases, then release the newest others beyond
    ``MAX_LIVE_LEASES`` (counting the reopened one): their slots become free."""
    others = list(
        Assignment.objects.select_for_update()
        .filter(project_id=project_id, annotator_id=user_id, status=AssignmentStatus.ACTIVE)
        .exclude(pk=keep)
        .order_by("created_at", "id")
        .values_list("id", "comparison_id", "expires_at")
    )
    overdue = [(lease_id, c) for lease_id, c, expires in others if expires <= now]
    if overdue:
        queue._expire_rows(overdue, now)
    live = [(lease_id, c) for lease_id, c, expires in others if expires > now]
    surplus = live[max(queue.MAX_LIVE_LEASES - 1, 0) :]
    if not surplus:
        return
    # a lease that holds an undone judgment keeps its row (the revision points at it) and
    # expires; an unseen prefetch is released, to be served again to anyone
    with_revision = set(
        JudgmentRevision.objects.filter(
            assignment_id__in=[lease_id for lease_id, _ in surplus]
        ).values_list("assignment_id", flat=True)
    )
    kept = [(lease_id, c) for lease_id, c in surplus if lease_id in with_revision]
    released = [(lease_id, c) for lease_id, c in surplus if lease_id not in with_revision]
    if kept:
        queue._expire_rows(kept, now)
    if released:
        queue._release_slots(Counter(c for _, c in released))
        Assignment.objects.filter(id__in=[lease_id for lease_id, _ in released]).delete()
