"""Writes of API tokens: issue, revoke one, revoke all of a user's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from accounts.keys import PREFIX_CHARS, hash_key, new_key
from accounts.models import ApiToken
from preflab.errors import NotFoundError


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str  # the secret: returned once, never stored


def issue_token(*, user: Any, name: str = "") -> IssuedToken:
    """A new token for ``user``, expiring after ``PREFLAB_TOKEN_TTL`` seconds (0: never)."""
    key = new_key()
    ttl = int(settings.PREFLAB_TOKEN_TTL)
    token = ApiToken.objects.create(
        user=user,
        key_hash=hash_key(key),
        prefix=key[:PREFIX_CHARS],
        name=name[:100],
        expires_at=timezone.now() + timedelta(seconds=ttl) if ttl > 0 else None,
    )
    return IssuedToken(token, key)


def revoke_token(*, user: Any, token_id: int) -> None:
    """Revoke one of ``user``'s tokens; another user's (or a missing) id is a 404."""
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    if not deleted:
        raise NotFoundError("No such token.")


@transaction.atomic
def revoke_all(*, user: Any, sessions: bool = False) -> int:
    """Revoke every token of ``user`` (and, with ``sessions``, end all their sessions);
    returns how many tokens were revoked."""
    revoked, _ = ApiToken.objects.filter(user=user).delete()
    if sessions:
        user_id = str(user.pk)
        stale = [
            s.pk
            for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
            if s.get_decoded().get("_auth_user_id") == user_id
        ]
        Session.objects.filter(pk__in=stale).delete()
    return revoked
