from django.urls import path

from annotation import api

urlpatterns = [
    path("projects/", api.ProjectListView.as_view(), name="project-list"),
    path("projects/<int:project_id>/", api.ProjectDetailView.as_view(), name="project-detail"),
]
