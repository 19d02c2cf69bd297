"""Reads of the training app's registry: what a project sees of artifacts and registrations."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from training.models import ModelArtifact, ModelRegistration


def project_artifacts(*, project_id: int) -> QuerySet[ModelArtifact]:
    """The project's own artifacts (made by Preflab or registered) and the shared ones."""
    return ModelArtifact.objects.filter(Q(project_id=project_id) | Q(project__isnull=True))


def project_registrations(*, project_id: int) -> QuerySet[ModelRegistration]:
    """The project's model registrations, newest first. Another project's registration is
    not among them: looked up by id it answers as a missing one."""
    return ModelRegistration.objects.filter(project_id=project_id)
