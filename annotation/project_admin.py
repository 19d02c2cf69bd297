"""Writes of a project's own settings: create (the creator becomes its admin), edit, archive.

Who may create projects: superusers, and users granted the site-wide Django permission
``annotation.add_project`` ("Can add project", grantable per user or group in the Django
admin).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation import services
from annotation.models import Project
from annotation.roles import Role
from preflab.errors import ConflictError, ForbiddenError, InvalidInputError

CREATE_PROJECT_PERMISSION = "annotation.add_project"

# The settings a project admin may change (name included), as the model's field names.
EDITABLE_FIELDS = (
    "name",
    "description",
    "instructions",
    "overlap_k",
    "lease_ttl_seconds",
    "allow_tie",
    "allow_both_bad",
    "strength_scale",
    "rationale_mode",
    "gold_rate",
    "min_gold_accuracy",
    "min_consensus_agreement",
    "min_median_seconds",
    "max_position_p_value",
)


class CannotCreateProjects(ForbiddenError):
    code = "cannot_create_projects"


class ProjectArchivedAlready(ConflictError):
    code = "project_already_archived"


class ProjectNotArchived(ConflictError):
    code = "project_not_archived"


def can_create_projects(user: Any) -> bool:
    """Superusers, and users holding ``annotation.add_project`` (directly or by a group)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return bool(user.is_superuser or user.has_perm(CREATE_PROJECT_PERMISSION))


def _invalid(error: ValidationError) -> InvalidInputError:
    fields = {k: [str(m) for m in v] for k, v in error.message_dict.items()}
    key, messages = next(iter(fields.items()))
    return InvalidInputError(f"{key}: {messages[0]}", extra={"fields": fields})


@transaction.atomic
def create_project_as(*, user: Any, name: str, **options: Any) -> Project:
    """Create a project for ``user``, who becomes its project admin."""
    if not can_create_projects(user):
        raise CannotCreateProjects(
            "You may not create projects: ask a site admin for the "
            f"“{CREATE_PROJECT_PERMISSION}” permission."
        )
    unknown = set(options) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInputError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    try:
        project = services.create_project(name=name, created_by=user, **options)
    except ValidationError as error:
        raise _invalid(error) from None
    services.set_membership(project=project, user=user, role=Role.PROJECT_ADMIN)
    return project


@transaction.atomic
def update_project_settings(*, project: Project, changes: dict[str, Any]) -> Project:
    """Apply ``changes`` (validated by the model's validators) and save only those fields."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInputError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    if not changes:
        return project
    locked = Project.objects.select_for_update().get(pk=project.pk)
    for field, value in changes.items():
        setattr(locked, field, value)
    try:
        locked.full_clean()
    except ValidationError as error:
        raise _invalid(error) from None
    locked.save(update_fields=[*changes, "updated_at"])
    return locked


@transaction.atomic
def archive_project(*, project: Project) -> Project:
    """Hide the project from project lists and stop its queue (no new leases)."""
    locked = Project.objects.select_for_update().get(pk=project.pk)
    if locked.archived_at is not None:
        raise ProjectArchivedAlready("This project is already archived.")
    locked.archived_at = timezone.now()
    locked.save(update_fields=["archived_at", "updated_at"])
    return locked


@transaction.atomic
def unarchive_project(*, project: Project) -> Project:
    locked = Project.objects.select_for_update().get(pk=project.pk)
    if locked.archived_at is None:
        raise ProjectNotArchived("This project is not archived.")
    locked.archived_at = None
    locked.save(update_fields=["archived_at", "updated_at"])
    return locked
