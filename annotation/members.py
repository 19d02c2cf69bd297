"""A project's members: the list with each one's activity, and the writes (add an existing
user or a new account, change a role, remove). A project always keeps one project admin:
membership writes lock the project row, so two admins demoting each other at once cannot
both succeed."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from annotation import queue, services
from annotation.models import Judgment, Project, ProjectMembership
from annotation.roles import Role
from preflab.errors import ConflictError, InvalidInputError, NotFoundError


class AlreadyMember(ConflictError):
    code = "already_member"


class LastProjectAdmin(ConflictError):
    code = "last_project_admin"


class UsernameTaken(ConflictError):
    code = "username_taken"


def members_of(*, project_id: int) -> QuerySet[ProjectMembership]:
    """The project's memberships with the user, ``judgment_count`` and ``last_judgment_at``
    (the member's judgments in this project), in one query."""
    mine = Judgment.objects.filter(
        project_id=OuterRef("project_id"), annotator_id=OuterRef("user_id")
    ).values("annotator_id")
    return (
        ProjectMembership.objects.filter(project_id=project_id)
        .select_related("user")
        .annotate(
            judgment_count=Coalesce(
                Subquery(mine.annotate(n=Count("id")).values("n")[:1]),
                Value(0),
                output_field=IntegerField(),
            ),
            last_judgment_at=Subquery(mine.annotate(t=Max("created_at")).values("t")[:1]),
        )
        .order_by("user__username", "id")
    )


def member_row(*, project_id: int, user_id: int) -> ProjectMembership:
    row = members_of(project_id=project_id).filter(user_id=user_id).first()
    if row is None:
        raise NotFoundError("No such member in this project.")
    return row


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise InvalidInputError(
            f"Unknown role {role!r}.", extra={"fields": {"role": ["unknown"]}, "roles": Role.values}
        )


def _messages(error: ValidationError) -> list[str]:
    return [str(m) for m in error.messages]


def create_account(*, username: str, password: str, email: str = "") -> Any:
    """A new active user; the username, the email and the password (Django's password
    validators) are checked first, each with its own message."""
    User = get_user_model()
    user = User(username=username.strip(), email=email.strip())
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as error:
        fields = {k: [str(m) for m in v] for k, v in error.message_dict.items()}
        taken = any("already exists" in m for m in fields.get("username", []))
        cls = UsernameTaken if taken else InvalidInputError
        key, messages = next(iter(fields.items()))
        raise cls(f"{key}: {messages[0]}", extra={"fields": fields}) from None
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        messages = _messages(error)
        raise InvalidInputError(
            "password: " + " ".join(messages), extra={"fields": {"password": messages}}
        ) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise UsernameTaken(
            "username: A user with that username already exists.",
            extra={"fields": {"username": ["taken"]}},
        ) from None
    return user


def find_user(identifier: str) -> Any:
    """An active user by username, else by email (case-insensitive)."""
    User = get_user_model()
    identifier = identifier.strip()
    if not identifier:
        raise InvalidInputError(
            "Give a username or an email.", extra={"fields": {"user": ["required"]}}
        )
    found = list(User.objects.filter(username__iexact=identifier, is_active=True)[:2])
    if len(found) != 1:
        found = list(User.objects.filter(email__iexact=identifier, is_active=True)[:2])
    if len(found) > 1:
        raise InvalidInputError(
            "Several users have this email; give the username.",
            extra={"fields": {"user": ["ambiguous"]}},
        )
    if not found:
        raise NotFoundError(
            f"No user named {identifier!r}.", extra={"fields": {"user": ["unknown"]}}
        )
    return found[0]


def _lock(project: Project) -> None:
    Project.objects.select_for_update().filter(pk=project.pk).first()


def _admin_count(project: Project) -> int:
    return ProjectMembership.objects.filter(project=project, role=Role.PROJECT_ADMIN).count()


@transaction.atomic
def add_member(*, project: Project, user: Any, role: str) -> ProjectMembership:
    """Add an existing user; a member already in the project is a conflict (409)."""
    _check_role(role)
    _lock(project)
    if ProjectMembership.objects.filter(project=project, user=user).exists():
        raise AlreadyMember(f"{user.get_username()} is already a member of this project.")
    return services.set_membership(project=project, user=user, role=role)


@transaction.atomic
def add_new_account(
    *, project: Project, username: str, password: str, email: str, role: str
) -> ProjectMembership:
    """Create an account and add it to the project, or neither."""
    _check_role(role)
    user = create_account(username=username, password=password, email=email)
    return add_member(project=project, user=user, role=role)


@transaction.atomic
def change_role(*, project: Project, user_id: int, role: str) -> ProjectMembership:
    _check_role(role)
    _lock(project)
    membership = ProjectMembership.objects.filter(project=project, user_id=user_id).first()
    if membership is None:
        raise NotFoundError("No such member in this project.")
    if membership.role == role:
        return membership
    if membership.role == Role.PROJECT_ADMIN and _admin_count(project) <= 1:
        raise LastProjectAdmin("This is the project's last admin: make someone else admin first.")
    if membership.role == Role.ANNOTATOR:
        # leases are taken by annotators only: a former annotator's slots go back to the queue
        queue.release_leases(project_id=project.pk, annotator_id=user_id)
    return services.set_membership(project=project, user=membership.user, role=role)


@transaction.atomic
def remove_member(*, project: Project, user_id: int) -> int:
    """Remove a member; their live leases are released. Returns the number released."""
    _lock(project)
    membership = ProjectMembership.objects.filter(project=project, user_id=user_id).first()
    if membership is None:
        raise NotFoundError("No such member in this project.")
    if membership.role == Role.PROJECT_ADMIN and _admin_count(project) <= 1:
        raise LastProjectAdmin("This is the project's last admin: make someone else admin first.")
    released = queue.release_leases(project_id=project.pk, annotator_id=user_id)
    membership.delete()
    return released
