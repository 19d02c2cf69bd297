"""Writes for the annotation app. Every write goes through a function here."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from annotation import queue
from annotation.models import AnnotatorExclusion, Judgment, Project, ProjectMembership
from annotation.roles import Role
from preflab.errors import ConflictError, InvalidInputError, NotFoundError


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


class AlreadyExcluded(ConflictError):
    code = "already_excluded"


@transaction.atomic
def exclude_annotator(
    *, project: Project, annotator_id: int, reason: str, by: Any
) -> AnnotatorExclusion:
    """Leave an annotator's judgments out of consensus and exports (audited, reversible),
    and stop their queue: their live leases are released and they take no new items."""
    if not reason.strip():
        raise InvalidInputError("A reason is required.", extra={"fields": {"reason": "required"}})
    is_annotator = (
        ProjectMembership.objects.filter(project=project, user_id=annotator_id).exists()
        or Judgment.objects.filter(project=project, annotator_id=annotator_id).exists()
    )
    if not is_annotator:
        raise NotFoundError("No such annotator in this project.")
    if AnnotatorExclusion.objects.filter(
        project=project, annotator_id=annotator_id, revoked_at__isnull=True
    ).exists():
        raise AlreadyExcluded("This annotator is already excluded.")
    exclusion = AnnotatorExclusion.objects.create(
        project=project, annotator_id=annotator_id, reason=reason.strip(), created_by=by
    )
    # the leases they hold go back to the queue: an excluded vote would take a slot for good
    queue.release_leases(project_id=project.pk, annotator_id=annotator_id)
    return exclusion


@transaction.atomic
def revoke_exclusion(
    *, project: Project, exclusion_id: int, reason: str, by: Any
) -> AnnotatorExclusion:
    """Bring an excluded annotator's judgments back (the exclusion row stays, as audit)."""
    exclusion = (
        AnnotatorExclusion.objects.select_for_update()
        .filter(pk=exclusion_id, project=project)
        .first()
    )
    if exclusion is None:
        raise NotFoundError("No such exclusion in this project.")
    if exclusion.revoked_at is not None:
        raise ConflictError("This exclusion was already revoked.")
    exclusion.revoked_at = timezone.now()
    exclusion.revoked_by = by
    exclusion.revoke_reason = reason.strip()
    exclusion.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    return exclusion
