"""Annotation API views: thin; they validate, call a service or selector, and render."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import generics

from annotation.models import Project
from annotation.selectors import projects_for_user
from annotation.serializers import ProjectSerializer


class ProjectListView(generics.ListAPIView[Project]):
    """Projects the caller is a member of (all of them for superusers)."""

    serializer_class = ProjectSerializer

    def get_queryset(self) -> QuerySet[Project]:
        return projects_for_user(self.request.user).order_by("-created_at", "-id")


class ProjectDetailView(generics.RetrieveAPIView[Project]):
    """One project; a project the caller is not a member of is a 404."""

    serializer_class = ProjectSerializer
    lookup_url_kwarg = "project_id"

    def get_queryset(self) -> QuerySet[Project]:
        return projects_for_user(self.request.user)
