"""Reads for the annotation app: querysets with the joins they need."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from annotation.models import Project, ProjectMembership
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
