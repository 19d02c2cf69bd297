from django.urls import path

from training import api, rounds_api

P = "projects/<int:project_id>/training-runs/"
R = "projects/<int:project_id>/rounds/"

urlpatterns = [
    path(P, api.TrainingRunListView.as_view(), name="training-runs"),
    path(P + "<int:run_id>/", api.TrainingRunDetailView.as_view(), name="training-run"),
    path(P + "<int:run_id>/cancel/", api.TrainingRunCancelView.as_view(), name="run-cancel"),
    path(P + "<int:run_id>/metrics/", api.TrainingRunMetricsView.as_view(), name="run-metrics"),
    path(
        "projects/<int:project_id>/artifacts/",
        api.ModelArtifactListView.as_view(),
        name="project-artifacts",
    ),
    path(
        "projects/<int:project_id>/artifacts/<int:artifact_id>/lineage/",
        rounds_api.ArtifactLineageView.as_view(),
        name="artifact-lineage",
    ),
    path(R, rounds_api.RoundListView.as_view(), name="rounds"),
    path(R + "defaults/", rounds_api.RoundDefaultsView.as_view(), name="round-defaults"),
    path(R + "<int:round_id>/", rounds_api.RoundDetailView.as_view(), name="round"),
    path(R + "<int:round_id>/cancel/", rounds_api.RoundCancelView.as_view(), name="round-cancel"),
    path(R + "<int:round_id>/retry/", rounds_api.RoundRetryView.as_view(), name="round-retry"),
]
