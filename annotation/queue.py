"""The leased comparison queue: next, submit, skip, release, and lease expiry.

Invariants, under any concurrency (DESIGN.md, "The queue"):
- no comparison ever gets more than k judgments — the counters move in the same transaction
  as the rows they count, and a CHECK constraint backs them;
- no annotator judges a comparison twice — ``Assignment`` is unique per (comparison, annotator);
- no accepted judgment is lost — a submit is one transaction, retried submits return the
  judgment already stored.

Undo (:mod:`annotation.undo`) keeps them: within the undo window, and only while the
comparison has fewer than k judgments, the annotator's latest judgment becomes a
``JudgmentRevision`` and its lease is live again — in one transaction, with the comparison
row locked, the judgment counter moves down and the lease counter up by one (their sum, the
slots taken, never changes, so an undo cannot make room for a k+1-th vote). The lease stays
the same (comparison, annotator) pair, and the next submit on it links the new judgment to
the revision. Only the current judgment is a ``Judgment`` row, so quality, consensus and
exports never see an undone one. The undo also keeps ``MAX_LIVE_LEASES``: it releases the
annotator's newest other live lease (the page's prefetch) when the reopened one would exceed it.

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
from django.db.models import F
from django.utils import timezone

from annotation import queue_sql as sql
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    JudgmentRevision,
    Project,
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


class AnnotatorExcluded(ForbiddenError):
    """An excluded annotator takes no more items (their votes would fill others' slots)."""

    code = "annotator_excluded"


class ProjectArchived(ConflictError):
    """An archived project leases no new items (a live lease may still be submitted)."""

    code = "project_archived"


def release_leases(*, project_id: int, annotator_id: int, now: datetime | None = None) -> int:
    """Expire an annotator's live leases in a project; their slots become free."""
    rows = list(
        Assignment.objects.select_for_update()
        .filter(project_id=project_id, annotator_id=annotator_id, status=AssignmentStatus.ACTIVE)
        .values_list("id", "comparison_id")
    )
    if rows:
        _expire_rows(rows, now or timezone.now())
    return len(rows)


class LeaseExpired(ConflictError):
    code = "lease_expired"


class LeaseClosed(ConflictError):
    code = "lease_closed"


class InvalidJudgment(InvalidInputError):
    code = "invalid_judgment"


@dataclass(frozen=True)
class Lease:
    """A live lease with what the annotator's page renders."""

    id: int
    comparison_id: int
    swapped: bool
    expires_at: datetime
    is_gold: bool
    messages: list[dict[str, str]]
    content_a: str
    content_b: str
    scheme: sql.Scheme


def _load_lease(assignment_id: int, scheme: sql.Scheme) -> Lease:
    row = sql.fetchone(sql.LEASE_CONTENT, [assignment_id])
    assert row is not None  # the caller just read or created it in this transaction
    lease_id, comparison_id, swapped, expires_at, is_gold, messages, a, b = row
    return Lease(
        id=lease_id,
        comparison_id=comparison_id,
        swapped=bool(swapped),
        expires_at=sql.py_datetime(expires_at),
        is_gold=bool(is_gold),
        messages=sql.py_json(messages),
        content_a=a,
        content_b=b,
        scheme=scheme,
    )


@transaction.atomic
def lease_next(
    *, project_id: int, user: Any, exclude: Iterable[int] = (), now: datetime | None = None
) -> Lease | None:
    """The caller's oldest live lease not in ``exclude``, else a new lease, else None.

    ``exclude`` lists leases the page already holds (the current item), so that asking for
    the prefetch returns a second lease instead of the same one.
    """
    now = now or timezone.now()
    member = sql.fetchone(sql.MEMBERSHIP_FOR_UPDATE + sql.lock_clause("m"), [project_id, user.pk])
    if member is None or member[0] != Role.ANNOTATOR:
        raise NotAnAnnotator("Only the project's annotators take items from its queue.")
    if member[1]:
        raise AnnotatorExcluded(
            "A project admin excluded you from this project's queue; ask them to revoke it."
        )
    if member[2]:
        raise ProjectArchived("This project is archived: it takes no more judgments.")
    scheme = sql.scheme_from(member[3:])
    excluded = set(exclude)

    live = [
        (lease_id, sql.py_datetime(expires), comparison_id)
        for lease_id, expires, comparison_id in sql.fetchall(sql.LIVE_LEASES, [project_id, user.pk])
    ]
    overdue = [(lease_id, c) for lease_id, expires, c in live if expires <= now]
    if overdue:
        _expire_rows(overdue, now)
    live = [row for row in live if row[1] > now]
    for lease_id, _, _ in live:
        if lease_id not in excluded:
            return _load_lease(lease_id, scheme)
    if len(live) >= MAX_LIVE_LEASES:
        return None

    comparison_id = _pick(project_id, user.pk, scheme)
    if comparison_id is None and _reclaim_expired(project_id=project_id, now=now):
        comparison_id = _pick(project_id, user.pk, scheme)
    if comparison_id is None:
        return None
    expires_at = now + timedelta(seconds=scheme.lease_ttl_seconds)
    row = sql.fetchone(
        sql.INSERT_LEASE,
        [
            project_id,
            comparison_id,
            user.pk,
            _rng.random() < 0.5,
            sql.db_datetime(now),
            sql.db_datetime(expires_at),
        ],
    )
    assert row is not None
    sql.execute(sql.TAKE_SLOT, [comparison_id])
    return _load_lease(row[0], scheme)


def _pick(project_id: int, user_id: int, scheme: sql.Scheme) -> int | None:
    """Lock one comparison with a free slot that the user was never assigned."""
    lock = sql.lock_clause("c", skip_locked=True)
    other_prompt = (
        sql.PICK_OPEN_OTHER_PROMPT + lock,
        [project_id, False, user_id, user_id, project_id],
    )
    open_regular = (sql.PICK_OPEN + lock, [project_id, False, user_id])
    gold = (sql.PICK_GOLD + lock, [project_id, True, user_id])
    # gold at the gold rate; once nothing regular is left, the unseen gold items. A regular
    # item comes from another prompt than the last one while there is such work open.
    if scheme.gold_rate > 0 and _rng.random() < scheme.gold_rate:
        queries = [gold, other_prompt, open_regular]
    else:
        queries = [other_prompt, open_regular, gold]
    for statement, params in queries:
        row = sql.fetchone(statement, params)
        if row is not None:
            return int(row[0])
    return None


def _expire_rows(rows: list[tuple[int, int]], now: datetime) -> None:
    """Expire leases given as (lease id, comparison id); their slots become free."""
    expired = Assignment.objects.filter(
        id__in=[r[0] for r in rows], status=AssignmentStatus.ACTIVE
    ).update(status=AssignmentStatus.EXPIRED, closed_at=now)
    if expired:
        _release_slots(Counter(r[1] for r in rows))


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


def validate_judgment(project: Project | sql.Scheme, data: JudgmentInput) -> None:
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


@dataclass(frozen=True)
class StoredJudgment:
    """A judgment as stored (choice in canonical A / B terms)."""

    id: int
    assignment_id: int
    choice: str
    strength: int | None
    rationale: str
    time_taken_ms: int | None
    swapped: bool
    created_at: datetime


def _stored_judgment(judgment_id: int) -> StoredJudgment:
    row = sql.fetchone(sql.JUDGMENT_BY_ID, [judgment_id])
    assert row is not None
    jid, assignment_id, choice, strength, rationale, time_taken_ms, swapped, created_at = row
    return StoredJudgment(
        jid,
        assignment_id,
        choice,
        strength,
        rationale,
        time_taken_ms,
        bool(swapped),
        sql.py_datetime(created_at),
    )


@transaction.atomic
def submit_judgment(
    *,
    project_id: int,
    assignment_id: int,
    user: Any,
    data: JudgmentInput,
    now: datetime | None = None,
) -> tuple[StoredJudgment, bool]:
    """Store the judgment for a lease. Idempotent: returns ``(judgment, created)``.

    A lease past its expiry is still accepted while its comparison has a free slot; once the
    slot was given to someone else it is a 409 ``lease_expired``.
    """
    now = now or timezone.now()
    row = sql.fetchone(
        sql.OWN_LEASE_FOR_UPDATE + sql.lock_clause("a"), [assignment_id, project_id, user.pk]
    )
    if row is None:
        raise NotFoundError("No such lease of yours in this project.")
    lease_id, status, swapped, comparison_id, expires_at = row[:5]
    scheme, existing_id = sql.scheme_from(row[5:12]), row[12]
    if existing_id is None and status == AssignmentStatus.SUBMITTED:
        # We waited for the row lock while a concurrent submit committed: the joined
        # judgment was read from the older snapshot. Read it again now.
        found = sql.fetchone(sql.JUDGMENT_ID_OF_LEASE, [lease_id])
        existing_id = found[0] if found else None
    if existing_id is not None:
        return _stored_judgment(existing_id), False
    if status == AssignmentStatus.SKIPPED:
        raise LeaseClosed("You skipped this comparison; it can no longer be judged.")
    if row[13]:
        raise AnnotatorExcluded(
            "A project admin excluded you from this project's queue; ask them to revoke it."
        )
    validate_judgment(scheme, data)

    if status == AssignmentStatus.ACTIVE:
        # The lease still holds its slot (even past expiry, until reclaimed): convert it.
        sql.execute(sql.CONVERT_LEASE, [comparison_id])
    elif not sql.execute(sql.TAKE_FREE_SLOT, [comparison_id]):
        # expired and reclaimed, and every slot was taken since
        raise LeaseExpired(
            "Your lease expired and the comparison was completed by others; take the next item.",
            extra={"expired_at": sql.py_datetime(expires_at).isoformat()},
        )
    choice = canonical_choice(data.choice, bool(swapped))
    inserted = sql.fetchone(
        sql.INSERT_JUDGMENT,
        [
            lease_id,
            project_id,
            comparison_id,
            user.pk,
            choice,
            data.strength,
            data.rationale,
            data.time_taken_ms,
            bool(swapped),
            sql.db_datetime(now),
        ],
    )
    assert inserted is not None
    sql.execute(sql.CLOSE_LEASE, [sql.db_datetime(now), lease_id])
    if row[14] is not None:  # judged again after an undo: link the revision to its successor
        sql.execute(sql.LINK_REVISION, [inserted[0], row[14]])
    judgment = StoredJudgment(
        inserted[0],
        lease_id,
        choice,
        data.strength,
        data.rationale,
        data.time_taken_ms,
        bool(swapped),
        now,
    )
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
    if JudgmentRevision.objects.filter(assignment=assignment).exists():
        # an undone judgment's lease keeps its row (the revision records it): it expires
        assignment.status = AssignmentStatus.EXPIRED
        assignment.closed_at = timezone.now()
        assignment.save(update_fields=["status", "closed_at"])
        return
    assignment.delete()
