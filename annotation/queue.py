"""The leased comparison queue: next, submit, skip, release, and lease expiry.

Invariants, under any concurrency (DESIGN.md, "The queue"):
- no comparison ever gets more than k judgments — the counters move in the same transaction
  as the rows they count, and a CHECK constraint backs them;
- no annotator judges a comparison twice — ``Assignment`` is unique per (comparison, annotator);
- no accepted judgment is lost — a submit is one transaction, retried submits return the
  judgment already stored.

On PostgreSQL the pick is ``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent annotators take
different rows without waiting; on SQLite writes are serialized by IMMEDIATE transactions.
Per annotator, ``next`` holds a lock on the membership row, so a double click cannot lease
twice. An annotator holds at most ``MAX_LIVE_LEASES`` leases: the current item and the one
the page prefetches.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from annotation.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    Judgment,
    Project,
    ProjectMembership,
    RationaleMode,
)
from annotation.roles import Role
from preflab.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError

MAX_LIVE_LEASES = 2
MAX_RATIONALE_CHARS = 10_000
DISPLAY_CHOICES = ("left", "right", "tie", "both_bad")
_rng = random.SystemRandom()


class NotAnAnnotator(ForbiddenError):
    code = "not_an_annotator"


class LeaseExpired(ConflictError):
    code = "lease_expired"


class LeaseClosed(ConflictError):
    code = "lease_closed"


class InvalidJudgment(InvalidInputError):
    code = "invalid_judgment"


def _lease_queryset() -> QuerySet[Assignment]:
    return Assignment.objects.select_related(
        "comparison__prompt", "comparison__response_a", "comparison__response_b"
    )


@transaction.atomic
def lease_next(
    *, project_id: int, user: Any, exclude: Iterable[int] = (), now: datetime | None = None
) -> Assignment | None:
    """The caller's oldest live lease not in ``exclude``, else a new lease, else None.

    ``exclude`` lists leases the page already holds (the current item), so that asking for
    the prefetch returns a second lease instead of the same one.
    """
    now = now or timezone.now()
    membership = (
        ProjectMembership.objects.select_for_update()
        .select_related("project")
        .filter(project_id=project_id, user=user)
        .first()
    )
    if membership is None or membership.role != Role.ANNOTATOR:
        raise NotAnAnnotator("Only the project's annotators take items from its queue.")
    project = membership.project
    excluded = set(exclude)

    live = list(
        _lease_queryset()
        .filter(project_id=project_id, annotator=user, status=AssignmentStatus.ACTIVE)
        .order_by("created_at", "id")
    )
    expired = [a for a in live if a.expires_at <= now]
    if expired:
        _expire(expired, now)
    live = [a for a in live if a.expires_at > now]
    for assignment in live:
        if assignment.id not in excluded:
            assignment.project = project
            return assignment
    if len(live) >= MAX_LIVE_LEASES:
        return None

    comparison = _pick(project, user)
    if comparison is None and _reclaim_expired(project_id=project_id, now=now):
        comparison = _pick(project, user)
    if comparison is None:
        return None
    assignment = Assignment.objects.create(
        project=project,
        comparison=comparison,
        annotator=user,
        swapped=_rng.random() < 0.5,
        expires_at=now + timedelta(seconds=project.lease_ttl_seconds),
    )
    Comparison.objects.filter(pk=comparison.pk).update(lease_count=F("lease_count") + 1)
    assignment.comparison = comparison
    return assignment


def _pick(project: Project, user: Any) -> Comparison | None:
    """Lock one comparison with a free slot that ``user`` was never assigned."""
    never_assigned = ~Exists(Assignment.objects.filter(comparison=OuterRef("pk"), annotator=user))
    base = Comparison.objects.filter(project=project).filter(never_assigned)
    candidates: list[QuerySet[Comparison]] = []
    open_regular = base.filter(
        is_gold=False, judgment_count__lt=F("target_votes") - F("lease_count")
    ).order_by("-judgment_count", "id")
    gold = base.filter(is_gold=True).order_by("id")
    if project.gold_rate > 0 and _rng.random() < project.gold_rate:
        candidates = [gold, open_regular]
    else:
        candidates = [open_regular]
    for queryset in candidates:
        picked = queryset.select_for_update(skip_locked=True, of=("self",)).select_related(
            "prompt", "response_a", "response_b"
        )[:1]
        found = next(iter(picked), None)
        if found is not None:
            return found
    return None


def _expire(assignments: list[Assignment], now: datetime) -> None:
    ids = [a.id for a in assignments]
    Assignment.objects.filter(id__in=ids, status=AssignmentStatus.ACTIVE).update(
        status=AssignmentStatus.EXPIRED, closed_at=now
    )
    _release_slots(Counter(a.comparison_id for a in assignments))


def _release_slots(per_comparison: Counter[int]) -> None:
    by_count: dict[int, list[int]] = {}
    for comparison_id, count in per_comparison.items():
        by_count.setdefault(count, []).append(comparison_id)
    for count, comparison_ids in by_count.items():
        Comparison.objects.filter(id__in=comparison_ids).update(
            lease_count=F("lease_count") - count
        )


def _reclaim_expired(*, project_id: int | None, now: datetime, limit: int = 5000) -> int:
    """Expire overdue leases (oldest first); their slots become free. Returns how many."""
    overdue = Assignment.objects.filter(status=AssignmentStatus.ACTIVE, expires_at__lte=now)
    if project_id is not None:
        overdue = overdue.filter(project_id=project_id)
    rows = list(
        overdue.select_for_update(skip_locked=True)
        .order_by("expires_at")
        .values_list("id", "comparison_id")[:limit]
    )
    if not rows:
        return 0
    Assignment.objects.filter(id__in=[r[0] for r in rows]).update(
        status=AssignmentStatus.EXPIRED, closed_at=now
    )
    _release_slots(Counter(r[1] for r in rows))
    return len(rows)


@transaction.atomic
def expire_overdue_leases(*, now: datetime | None = None) -> int:
    """Periodic task body: free the slots of every overdue lease."""
    return _reclaim_expired(project_id=None, now=now or timezone.now())


@dataclass(frozen=True)
class JudgmentInput:
    """A judgment as the page sends it, in display terms (left / right)."""

    choice: str
    strength: int | None = None
    rationale: str = ""
    time_taken_ms: int | None = None


def canonical_choice(display_choice: str, swapped: bool) -> str:
    """Map left / right (what the annotator saw) to A / B (the stored order)."""
    if display_choice == "left":
        return Choice.B if swapped else Choice.A
    if display_choice == "right":
        return Choice.A if swapped else Choice.B
    return Choice.TIE if display_choice == "tie" else Choice.BOTH_BAD


def validate_judgment(project: Project, data: JudgmentInput) -> None:
    """Check a judgment against the project's label scheme."""
    fields: dict[str, str] = {}
    if data.choice not in DISPLAY_CHOICES:
        fields["choice"] = f"must be one of {', '.join(DISPLAY_CHOICES)}"
    elif data.choice == "tie" and not project.allow_tie:
        fields["choice"] = "this project does not allow ties"
    elif data.choice == "both_bad" and not project.allow_both_bad:
        fields["choice"] = "this project does not allow 'both bad'"
    if data.strength is not None and not 1 <= data.strength <= 4:
        fields["strength"] = "must be 1 (negligibly) … 4 (significantly)"
    elif project.strength_scale and data.choice in ("left", "right") and data.strength is None:
        fields["strength"] = "this project asks how much better (1–4)"
    elif not project.strength_scale and data.strength is not None:
        fields["strength"] = "this project has no strength scale"
    elif data.choice in ("tie", "both_bad") and data.strength is not None:
        fields["strength"] = "a tie or 'both bad' takes no strength"
    if project.rationale_mode == RationaleMode.REQUIRED and not data.rationale.strip():
        fields["rationale"] = "this project requires a rationale"
    if len(data.rationale) > MAX_RATIONALE_CHARS:
        fields["rationale"] = f"longer than {MAX_RATIONALE_CHARS} characters"
    if data.time_taken_ms is not None and not 0 <= data.time_taken_ms <= 24 * 3600 * 1000:
        fields["time_taken_ms"] = "must be between 0 and one day"
    if fields:
        first = next(iter(fields.items()))
        raise InvalidJudgment(f"{first[0]}: {first[1]}", extra={"fields": fields})


def _own_assignment(*, project_id: int, assignment_id: int, user: Any) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(pk=assignment_id, project_id=project_id, annotator=user)
        .first()
    )
    if assignment is None:
        raise NotFoundError("No such lease of yours in this project.")
    return assignment


@transaction.atomic
def submit_judgment(
    *,
    project_id: int,
    assignment_id: int,
    user: Any,
    data: JudgmentInput,
    now: datetime | None = None,
) -> tuple[Judgment, bool]:
    """Store the judgment for a lease. Idempotent: returns ``(judgment, created)``.

    A lease past its expiry is still accepted while its comparison has a free slot; once the
    slot was given to someone else it is a 409 ``lease_expired``.
    """
    now = now or timezone.now()
    assignment = _own_assignment(project_id=project_id, assignment_id=assignment_id, user=user)
    existing = Judgment.objects.filter(assignment=assignment).first()
    if existing is not None:
        return existing, False
    if assignment.status == AssignmentStatus.SKIPPED:
        raise LeaseClosed("You skipped this comparison; it can no longer be judged.")
    validate_judgment(assignment.project, data)

    comparison = Comparison.objects.filter(pk=assignment.comparison_id)
    if assignment.status == AssignmentStatus.ACTIVE:
        # The lease still holds its slot (even past expiry, until reclaimed): convert it.
        comparison.update(lease_count=F("lease_count") - 1, judgment_count=F("judgment_count") + 1)
    else:  # expired and reclaimed: take a slot only if one is still free
        taken = comparison.filter(judgment_count__lt=F("target_votes") - F("lease_count")).update(
            judgment_count=F("judgment_count") + 1
        )
        if not taken:
            raise LeaseExpired(
                "Your lease expired and the comparison was completed by others; "
                "take the next item.",
                extra={"expired_at": assignment.expires_at.isoformat()},
            )
    judgment = Judgment.objects.create(
        assignment=assignment,
        project_id=project_id,
        comparison_id=assignment.comparison_id,
        annotator=user,
        choice=canonical_choice(data.choice, assignment.swapped),
        strength=data.strength,
        rationale=data.rationale,
        time_taken_ms=data.time_taken_ms,
        swapped=assignment.swapped,
    )
    assignment.status = AssignmentStatus.SUBMITTED
    assignment.closed_at = now
    assignment.save(update_fields=["status", "closed_at"])
    return judgment, True


@transaction.atomic
def skip_assignment(
    *,
    project_id: int,
    assignment_id: int,
    user: Any,
    reason: str = "",
    now: datetime | None = None,
) -> Assignment:
    """Give up a comparison for good: its slot is freed, it is never served to you again."""
    assignment = _own_assignment(project_id=project_id, assignment_id=assignment_id, user=user)
    if assignment.status == AssignmentStatus.SKIPPED:
        return assignment
    if assignment.status == AssignmentStatus.SUBMITTED:
        raise LeaseClosed("This comparison is already judged.")
    if assignment.status == AssignmentStatus.ACTIVE:
        _release_slots(Counter({assignment.comparison_id: 1}))
    assignment.status = AssignmentStatus.SKIPPED
    assignment.skip_reason = reason[:500]
    assignment.closed_at = now or timezone.now()
    assignment.save(update_fields=["status", "skip_reason", "closed_at"])
    return assignment


@transaction.atomic
def release_assignment(*, project_id: int, assignment_id: int, user: Any) -> None:
    """Hand a lease back without judging (it may be served again, to anyone)."""
    assignment = _own_assignment(project_id=project_id, assignment_id=assignment_id, user=user)
    if assignment.status != AssignmentStatus.ACTIVE:
        raise LeaseClosed(f"This lease is {assignment.status}; there is nothing to release.")
    _release_slots(Counter({assignment.comparison_id: 1}))
    assignment.delete()
