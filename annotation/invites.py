"""Invite links: a project admin makes a link that lets one person join the project with a
role. The database keeps only the token's SHA-256 (as for API tokens). An invite is used
once; it can expire or be revoked first. Accepting locks the invite row, so two accepts at
the same moment cannot both succeed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import status

from accounts.keys import hash_key
from annotation import members
from annotation.models import Project, ProjectInvite, ProjectMembership
from annotation.queue import ProjectArchived
from preflab.errors import DomainError, InvalidInputError, NotFoundError

DEFAULT_TTL_HOURS = 7 * 24
MAX_TTL_HOURS = 90 * 24


class InviteGone(DomainError):
    """An invite that can no longer be used (410)."""

    code = "invite_gone"
    status_code = status.HTTP_410_GONE


class InviteUsed(InviteGone):
    code = "invite_used"


class InviteExpired(InviteGone):
    code = "invite_expired"


class InviteRevoked(InviteGone):
    code = "invite_revoked"


@dataclass(frozen=True)
class IssuedInvite:
    invite: ProjectInvite
    token: str  # the secret: returned once, never stored


def invite_state(invite: ProjectInvite, now: datetime | None = None) -> str:
    """``active``, ``used``, ``revoked`` or ``expired``."""
    now = now or timezone.now()
    if invite.used_at is not None:
        return "used"
    if invite.revoked_at is not None:
        return "revoked"
    if invite.expires_at <= now:
        return "expired"
    return "active"


_GONE: dict[str, tuple[type[InviteGone], str]] = {
    "used": (InviteUsed, "This invite link was already used."),
    "revoked": (InviteRevoked, "This invite link was revoked by a project admin."),
    "expired": (InviteExpired, "This invite link has expired; ask for a new one."),
}


def invites_of(*, project_id: int) -> QuerySet[ProjectInvite]:
    return ProjectInvite.objects.filter(project_id=project_id).select_related(
        "created_by", "used_by"
    )


@transaction.atomic
def create_invite(
    *, project: Project, role: str, by: Any, ttl_hours: int = DEFAULT_TTL_HOURS
) -> IssuedInvite:
    members._check_role(role)
    if not 1 <= ttl_hours <= MAX_TTL_HOURS:
        raise InvalidInputError(
            f"expires_in_hours: between 1 and {MAX_TTL_HOURS}.",
            extra={"fields": {"expires_in_hours": ["out of range"]}},
        )
    token = secrets.token_urlsafe(32)
    invite = ProjectInvite.objects.create(
        project=project,
        role=role,
        token_hash=hash_key(token),
        created_by=by,
        expires_at=timezone.now() + timedelta(hours=ttl_hours),
    )
    return IssuedInvite(invite, token)


@transaction.atomic
def revoke_invite(*, project: Project, invite_id: int) -> ProjectInvite:
    """Revoke an unused invite (revoking twice is a no-op; a used one is a 410)."""
    invite = ProjectInvite.objects.select_for_update().filter(pk=invite_id, project=project).first()
    if invite is None:
        raise NotFoundError("No such invite in this project.")
    if invite.used_at is not None:
        raise InviteUsed("This invite link was already used.")
    if invite.revoked_at is None:
        invite.revoked_at = timezone.now()
        invite.save(update_fields=["revoked_at"])
    return invite


def invite_by_token(token: str) -> ProjectInvite:
    """The invite of a token (with its project), or 404."""
    invite = (
        ProjectInvite.objects.select_related("project").filter(token_hash=hash_key(token)).first()
    )
    if invite is None:
        raise NotFoundError("No such invite link.")
    return invite


@transaction.atomic
def accept_invite(
    *, token: str, user: Any | None, username: str = "", password: str = "", email: str = ""
) -> ProjectMembership:
    """Join the invite's project: ``user`` when signed in, else a new account made from
    ``username``/``password``/``email``. The invite is marked used in the same transaction."""
    invite = (
        ProjectInvite.objects.select_for_update()
        .select_related("project")
        .filter(token_hash=hash_key(token))
        .first()
    )
    if invite is None:
        raise NotFoundError("No such invite link.")
    state = invite_state(invite)
    if state != "active":
        cls, message = _GONE[state]
        raise cls(message)
    if invite.project.archived_at is not None:
        raise ProjectArchived("This project is archived: it takes no new members.")
    if user is None:
        if not username.strip() or not password:
            raise InvalidInputError(
                "Choose a username and a password to create your account.",
                extra={"fields": {"username": ["required"], "password": ["required"]}},
            )
        user = members.create_account(username=username, password=password, email=email)
    membership = members.add_member(project=invite.project, user=user, role=invite.role)
    invite.used_at = timezone.now()
    invite.used_by = user
    invite.save(update_fields=["used_at", "used_by"])
    return membership
