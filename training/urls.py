from django.urls import path

import preflab.converters  # noqa: F401 - registers <id:…>
from training import api, rounds_api

P = "projects/<id:project_id>/training-runs/"
R = "projects/<id:project_id>/rounds/"

urlpatterns = [
    path(P, api.TrainingRunListView.as_view(), name="training-runs"),
    path(P + "<id:run_id>/", api.TrainingRunDetailView.as_view(), name="training-run"),
    path(P + "<id:run_id>/cancel/", api.TrainingRunCancelView.as_view(), name="run-cancel"),
    path(P + "<id:run_id>/metrics/", api.TrainingRunMetricsView.as_view(), name="run-metrics"),
    path(
        "projects/<id:project_id>/artifacts/",
        api.ModelArtifactListView.as_view(),
        name="project-artifacts",
    ),
    path(
        "projects/<id:project_id>/artifact-registrations/",
        api.ModelRegistrationListView.as_view(),
        name="artifact-registrations",
    ),
    path(
        "projects/<id:project_id>/artifact-registrations/<id:registration_id>/",
        api.ModelRegistrationDetailView.as_view(),
        name="artifact-registration",
    ),
    path(
        "projects/<id:project_id>/artifacts/<id:artifact_id>/lineage/",
        rounds_api.ArtifactLineageView.as_view(),
        name="artifact-lineage",
    ),
    path(R, rounds_api.RoundListView.as_view(), name="rounds"),
    path(R + "defaults/", rounds_api.RoundDefaultsView.as_view(), name="round-defaults"),
    path(R + "<id:round_id>/", rounds_api.RoundDetailView.as_view(), name="round"),
    path(R + "<id:round_id>/cancel/", rounds_api.RoundCancelView.as_view(), name="round-cancel"),
    path(R + "<id:round_id>/retry/", rounds_api.RoundRetryView.as_view(), name="round-retry"),
    path(
        R + "<id:round_id>/override/",
        rounds_api.RoundOverrideView.as_view(),
        name="round-override",
    ),
]
