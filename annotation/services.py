"""Writes for the annotation app. Every write goes through a function here."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from annotation.models import Project, ProjectMembership
from annotation.roles import Role
from preflab.errors import InvalidInputError


@transaction.atomic
def create_project(*, name: str, created_by: Any | None = None, **options: Any) -> Project:
    """Create a project with the given options (validated by the model's field validators)."""
    project = Project(name=name, created_by=created_by, **options)
    project.full_clean()
    project.save()
    return project


@transaction.atomic
def set_membership(*, project: Project, user: Any, role: str) -> ProjectMembership:
    """Give ``user`` ``role`` in ``project`` (replacing any earlier role) and its group."""
    if role not in Role.values:
        raise InvalidInputError(f"Unknown role {role!r}.", extra={"roles": list(Role.values)})
    membership, _ = ProjectMembership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    return membership
