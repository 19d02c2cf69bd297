"""The authentication backend: Django's ``ModelBackend`` behind the login lock-out and the
per-client login rate, so that no way of logging in with a password — the API's session and
token logins, the Django admin's form, anything added later — can bypass them."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from preflab.throttling import LoginLockout, LoginRate

logger = logging.getLogger(__name__)


class GuardedModelBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None or password is None:
            return None
        lockout = LoginLockout(username)
        try:
            lockout.check()
            if request is not None and not LoginRate(request).hit():
                raise PermissionDenied("too many login attempts from this client")
        except PermissionDenied:
            raise
        except Exception as exc:  # a locked username, or a cache we cannot consult
            # PermissionDenied ends Django's authenticate(): no other backend is tried, and
            # the caller sees a failed login (the API answers 429/503 before it gets here)
            logger.info("login refused for a guarded username: %s", type(exc).__name__)
            raise PermissionDenied(str(exc)) from exc
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None or not self.user_can_authenticate(user):
            lockout.failed()
            return None
        lockout.succeeded()
        return user
