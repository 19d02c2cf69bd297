"""``Authorization: Token <key>`` against hashed, expiring tokens (:mod:`accounts.models`).

The annotation hot path pays one indexed lookup by the key's SHA-256 (the user joined in),
as DRF's own token authentication does by the key; ``last_used_at`` is written at most once
an hour per token, so steady use adds no write per request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts.keys import hash_key
from accounts.models import ApiToken

LAST_USED_EVERY = timedelta(hours=1)


class HashedTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        try:  # one indexed lookup; only the columns the check reads
            token = (
                ApiToken.objects.select_related("user")
                .only("id", "expires_at", "last_used_at", "user")
                .get(key_hash=hash_key(key))
            )
        except ApiToken.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("Token expired; create a new one.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token
