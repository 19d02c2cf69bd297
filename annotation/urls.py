from django.urls import path

import preflab.converters  # noqa: F401 - registers <id:…>
from annotation import api, api_browse, api_import_jobs
from annotation.api_annotators import AnnotatorPageView

P = "projects/<id:project_id>/"
A = P + "assignments/<id:assignment_id>/"
J = P + "import-jobs/<id:job_id>/"

urlpatterns = [
    path("projects/", api.ProjectListView.as_view(), name="project-list"),
    path(P, api.ProjectDetailView.as_view(), name="project-detail"),
    path(P + "queue/next/", api.QueueNextView.as_view(), name="queue-next"),
    path(P + "progress/", api.ProgressView.as_view(), name="queue-progress"),
    path(A + "submit/", api.SubmitView.as_view(), name="assignment-submit"),
    path(A + "skip/", api.SkipView.as_view(), name="assignment-skip"),
    path(A + "release/", api.ReleaseView.as_view(), name="assignment-release"),
    path(A + "undo/", api.UndoView.as_view(), name="assignment-undo"),
    path(P + "imports/", api.ImportView.as_view(), name="project-import"),
    path(P + "quality/", api.QualityView.as_view(), name="project-quality"),
    path(P + "quality/recompute/", api.QualityRecomputeView.as_view(), name="quality-recompute"),
    path(P + "exclusions/", api.ExclusionListView.as_view(), name="project-exclusions"),
    path(P + "exports/", api.ExportListView.as_view(), name="project-exports"),
    path(P + "exports/<id:export_id>/", api.ExportDetailView.as_view(), name="export-detail"),
    path(
        P + "exports/<id:export_id>/files/<str:name>",
        api.ExportFileView.as_view(),
        name="export-file",
    ),
    path(
        P + "exclusions/<id:exclusion_id>/revoke/",
        api.ExclusionRevokeView.as_view(),
        name="exclusion-revoke",
    ),
    path(P + "annotators/<id:user_id>/", AnnotatorPageView.as_view(), name="project-annotator"),
    path(P + "import-jobs/", api_import_jobs.ImportJobListView.as_view(), name="import-jobs"),
    path(J, api_import_jobs.ImportJobDetailView.as_view(), name="import-job-detail"),
    path(J + "cancel/", api_import_jobs.ImportJobCancelView.as_view(), name="import-job-cancel"),
    path(
        J + "bad-lines",
        api_import_jobs.ImportJobBadLinesView.as_view(),
        name="import-job-bad-lines",
    ),
    path(P + "data/prompts/", api_browse.PromptBrowseView.as_view(), name="data-prompts"),
    path(
        P + "data/comparisons/",
        api_browse.ComparisonBrowseView.as_view(),
        name="data-comparisons",
    ),
    path(
        P + "data/comparisons/<id:comparison_id>/",
        api_browse.ComparisonHistoryView.as_view(),
        name="data-comparison",
    ),
    path(P + "data/judgments/", api_browse.JudgmentBrowseView.as_view(), name="data-judgments"),
]
