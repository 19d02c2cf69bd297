from django.urls import path

from training import api

P = "projects/<int:project_id>/training-runs/"

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
]
