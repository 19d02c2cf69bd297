"""Django admin for the annotation domain: searchable, filterable; judgments read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from annotation.models import (
    Assignment,
    Batch,
    Comparison,
    Judgment,
    JudgmentRevision,
    Project,
    ProjectInvite,
    ProjectMembership,
    Prompt,
    Response,
)


class MembershipInline(admin.TabularInline[ProjectMembership, Project]):
    model = ProjectMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin[Project]):
    list_display = ["id", "name", "overlap_k", "gold_rate", "created_at"]
    search_fields = ["name", "description"]
    list_filter = ["allow_tie", "allow_both_bad", "strength_scale", "rationale_mode"]
    inlines = [MembershipInline]


@admin.register(ProjectMembership)
class ProjectMembershipAdmin(admin.ModelAdmin[ProjectMembership]):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user", "project"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin[Prompt]):
    list_display = ["id", "external_id", "project", "created_at"]
    list_filter = ["project"]
    search_fields = ["external_id"]
    raw_id_fields = ["project"]


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin[Response]):
    list_display = ["id", "prompt", "source", "round_number", "created_at"]
    list_filter = ["source"]
    search_fields = ["content", "prompt__external_id"]
    raw_id_fields = ["prompt"]


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin[Batch]):
    list_display = ["id", "name", "project", "source", "comparison_count", "created_at"]
    list_filter = ["source", "project"]
    search_fields = ["name"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin[Comparison]):
    list_display = ["id", "project", "batch", "is_gold", "judgment_count", "lease_count"]
    list_filter = ["is_gold", "project"]
    search_fields = ["prompt__external_id"]
    raw_id_fields = ["prompt", "response_a", "response_b", "batch", "project"]
    readonly_fields = ["judgment_count", "lease_count"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin[Assignment]):
    list_display = ["id", "comparison", "annotator", "status", "swapped", "expires_at"]
    list_filter = ["status", "project"]
    search_fields = ["annotator__username"]
    raw_id_fields = ["comparison", "annotator", "project"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin[Judgment]):
    """Judgments are paid human labour: read-only here."""

    list_display = ["id", "comparison", "annotator", "choice", "strength", "created_at"]
    list_filter = ["choice", "strength", "project"]
    search_fields = ["annotator__username", "rationale"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ProjectInvite)
class ProjectInviteAdmin(admin.ModelAdmin[ProjectInvite]):
    """Invite links are made and revoked by project admins in the app: read-only here (the
    token itself is never stored)."""

    list_display = ["id", "project", "role", "created_by", "expires_at", "used_by", "revoked_at"]
    list_filter = ["role", "project"]
    exclude = ["token_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(JudgmentRevision)
class JudgmentRevisionAdmin(admin.ModelAdmin[JudgmentRevision]):
    """Undone judgments, kept as they were: read-only here, like judgments."""

    list_display = [
        "id",
        "comparison",
        "annotator",
        "choice",
        "strength",
        "judged_at",
        "undone_at",
        "resubmitted_judgment_id",
    ]
    list_filter = ["choice", "project"]
    search_fields = ["annotator__username", "rationale"]
    raw_id_fields = ["project", "assignment", "comparison", "annotator", "undone_by"]
    date_hierarchy = "undone_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
