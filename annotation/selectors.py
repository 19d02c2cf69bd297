"""Reads for the annotation app: querysets with the joins they need."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import (
    AnnotatorExclusion,
    Assignment,
    Comparison,
    Judgment,
    JudgmentRevision,
    Project,
    ProjectMembership,
    QualitySnapshot,
)
from annotation.roles import Role


def user_roles(user: Any) -> list[str]:
    """Names of the roles a user holds in any project (plus the global groups)."""
    if not getattr(user, "is_authenticated", False):
        return []
    from_memberships = set(
        ProjectMembership.objects.filter(user=user).values_list("role", flat=True).distinct()
    )
    from_groups = set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
    return sorted(from_memberships | from_groups)


def projects_for_user(user: Any) -> QuerySet[Project]:
    """Projects the user may see, annotated with ``my_role`` (None for superusers' extras)."""
    role = ProjectMembership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    qs = Project.objects.annotate(my_role=Subquery(role))
    if getattr(user, "is_superuser", False):
        return qs
    return qs.filter(memberships__user=user)


def membership_role(*, user: Any, project_id: int) -> str | None:
    """The user's role in a project, or None when not a member."""
    return (
        ProjectMembership.objects.filter(user=user, project_id=project_id)
        .values_list("role", flat=True)
        .first()
    )


def annotator_progress(
    *, project_id: int, user: Any, now: datetime | None = None
) -> dict[str, int]:
    """Judgments done today and in total by ``user``, and items still open to them."""
    now = now or timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Judgment.objects.filter(project_id=project_id, annotator=user)
    never_assigned = ~Exists(Assignment.objects.filter(comparison=OuterRef("pk"), annotator=user))
    open_to_me = Comparison.objects.filter(
        project_id=project_id,
        is_gold=False,
        judgment_count__lt=F("target_votes") - F("lease_count"),
    ).filter(never_assigned)
    totals = Comparison.objects.filter(project_id=project_id, is_gold=False).aggregate(
        comparisons=Count("id"),
        judgments=Coalesce(Sum("judgment_count"), 0),
        target=Coalesce(Sum("target_votes"), 0),
    )
    return {
        "done_today": mine.filter(created_at__gte=midnight).count(),
        "done_total": mine.count(),
        "available_to_you": open_to_me.count(),
        "project_comparisons": totals["comparisons"],
        "project_judgments": totals["judgments"],
        "project_judgments_needed": totals["target"],
    }


def quality_view(*, project_id: int) -> dict[str, Any]:
    """The latest quality snapshot and what changed since: judgments that arrived after it and
    judgments it counted that were undone after it was computed (either makes it stale)."""
    snapshot = QualitySnapshot.objects.filter(project_id=project_id).first()
    if snapshot is None:  # never computed: every judgment is new
        total = Judgment.objects.filter(project_id=project_id).count()
        return {
            "computed_at": None,
            "stale": total > 0,
            "new_judgments": total,
            "undone_judgments": 0,
            "data": None,
        }
    new = Judgment.objects.filter(project_id=project_id, id__gt=snapshot.last_judgment_id).count()
    undone = JudgmentRevision.objects.filter(
        project_id=project_id,
        undone_at__gt=snapshot.computed_at,
        judgment_id_was__lte=snapshot.last_judgment_id,
    ).count()
    return {
        "computed_at": snapshot.computed_at,
        "stale": new > 0 or undone > 0,
        "new_judgments": new,
        "undone_judgments": undone,
        "data": snapshot.payload,
    }


def excluded_annotator_ids(*, project_id: int) -> list[int]:
    """Annotators whose judgments are currently left out of consensus and exports."""
    return list(
        AnnotatorExclusion.objects.filter(
            project_id=project_id, revoked_at__isnull=True
        ).values_list("annotator_id", flat=True)
    )


def exclusions_of(*, project_id: int) -> QuerySet[AnnotatorExclusion]:
    return AnnotatorExclusion.objects.filter(project_id=project_id).select_related(
        "annotator", "created_by", "revoked_by"
    )
