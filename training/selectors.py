"""Reads of the training app: what a project sees of artifacts, registrations, training runs
and their metrics."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from training.models import ModelArtifact, ModelRegistration, RunMetric, TrainingRun


def project_artifacts(*, project_id: int) -> QuerySet[ModelArtifact]:
    """The project's own artifacts (made by Preflab or registered) and the shared ones."""
    return ModelArtifact.objects.filter(Q(project_id=project_id) | Q(project__isnull=True))


def project_registrations(*, project_id: int) -> QuerySet[ModelRegistration]:
    """The project's model registrations, newest first. Another project's registration is
    not among them: looked up by id it answers as a missing one."""
    return ModelRegistration.objects.filter(project_id=project_id)


def project_runs(*, project_id: int) -> QuerySet[TrainingRun]:
    """The project's training runs, newest first."""
    return TrainingRun.objects.filter(project_id=project_id)


def project_run(*, project_id: int, run_id: int) -> TrainingRun | None:
    """One run of the project (another project's run is not found)."""
    return project_runs(project_id=project_id).filter(pk=run_id).first()


def run_metrics(*, run: TrainingRun, after: int | None = None) -> QuerySet[RunMetric]:
    """A run's step metrics in step order, those after step ``after`` when given."""
    rows = RunMetric.objects.filter(run=run)
    if after is not None:
        rows = rows.filter(step__gt=after)
    return rows.order_by("step", "id")
