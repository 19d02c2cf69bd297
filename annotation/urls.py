from django.urls import path

import preflab.converters  # noqa: F401 - registers <id:…>
from annotation import admin_api, api, api_browse, api_import_jobs
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
    path(P + "archive/", admin_api.ProjectArchiveView.as_view(), name="project-archive"),
    path(P + "unarchive/", admin_api.ProjectUnarchiveView.as_view(), name="project-unarchive"),
    path(P + "members/", admin_api.MemberListView.as_view(), name="project-members"),
    path(P + "members/<id:user_id>/", admin_api.MemberDetailView.as_view(), name="project-member"),
    path(P + "invites/", admin_api.InviteListView.as_view(), name="project-invites"),
    path(
        P + "invites/<id:invite_id>/", admin_api.InviteDetailView.as_view(), name="project-invite"
    ),
    path("invites/<str:token>/", admin_api.InviteTokenView.as_view(), name="invite-token"),
    path("invites/<str:token>/accept/", admin_api.InviteAcceptView.as_view(), name="invite-accept"),
]
