"""API permission rules: project membership with a role. Superusers pass everywhere."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from annotation.roles import Role
from annotation.selectors import membership_role
from preflab.errors import NotFoundError


def has_project_role(user: Any, project_id: int, roles: frozenset[str]) -> bool:
    """True when the user is a superuser or holds one of ``roles`` in the project."""
    if not getattr(user, "is_authenticated", False):
        return False
    if getattr(user, "is_superuser", False):
        return True
    return membership_role(user=user, project_id=project_id) in roles


class ProjectRolePermission(BasePermission):
    """Checks the ``project_id`` URL kwarg against ``allowed_roles`` of the subclass."""

    allowed_roles: frozenset[str] = frozenset()
    message = "You do not have the role this project action needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        project_id = view.kwargs.get("project_id")
        if project_id is None:
            return bool(request.user and request.user.is_authenticated)
        allowed = has_project_role(request.user, int(project_id), self.allowed_roles)
        if allowed and getattr(request.user, "is_superuser", False):
            # a superuser passes without a membership row: a project that does not exist
            # answers 404 here, before a view looks it up
            from annotation.models import Project

            if not Project.objects.filter(pk=int(project_id)).exists():
                raise NotFoundError("No such project.")
        return allowed


class IsProjectMember(ProjectRolePermission):
    allowed_roles = frozenset(Role.values)


class IsProjectAnnotator(ProjectRolePermission):
    allowed_roles = frozenset({Role.ANNOTATOR})


class IsProjectAdmin(ProjectRolePermission):
    allowed_roles = frozenset({Role.PROJECT_ADMIN})


class IsProjectAdminOrMLEngineer(ProjectRolePermission):
    allowed_roles = frozenset({Role.PROJECT_ADMIN, Role.ML_ENGINEER})


class IsProjectMLEngineer(ProjectRolePermission):
    allowed_roles = frozenset({Role.ML_ENGINEER})
