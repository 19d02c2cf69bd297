"""Login lock-out and the per-user API rate limit, both kept in the Django cache.

* :class:`LoginLockout` counts consecutive failed logins per username. After
  ``PREFLAB_LOGIN_LOCKOUT_FAILURES`` failures the username is locked for
  ``PREFLAB_LOGIN_LOCKOUT_SECONDS``: every attempt (even with the right password) is answered
  429 ``login_locked`` with ``Retry-After``. A successful login resets the count. Usernames
  are never looked up: an unknown username is counted and locked exactly like a known one,
  so the answers do not reveal which accounts exist.
* :class:`ApiUserRateThrottle` limits authenticated API requests per user to
  ``PREFLAB_API_RATE`` (a fixed-window counter: one small integer per user and window,
  incremented atomically, so a request costs one or two cache round trips and no list of
  timestamps is (de)serialised as with DRF's ``UserRateThrottle``).

The rate limit lets requests through while the cache is unreachable (annotators keep working
on PostgreSQL); login stays closed then (503 ``cache_unavailable``): an unchecked lock-out
would allow unlimited password guessing.

The login counters live in the ``shared`` cache (Redis, or on the embedded default a file
cache every gunicorn worker of the host reads: a lock holds whichever worker answers); the
API rate in ``default`` (Redis, or each process's memory on the embedded default, where the
effective rate is multiplied by the number of workers).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.base import BaseCache
from redis.exceptions import RedisError
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"6000/min"`` → ``(6000, 60)``: requests allowed per period in seconds."""
    count, _, period = rate.partition("/")
    if not count.strip().isdigit() or not period.strip() or period.strip()[0] not in _PERIODS:
        raise ValueError(f"Not a rate like '100/min': {rate!r}")
    return int(count), _PERIODS[period.strip()[0]]


def shared_cache() -> BaseCache:
    """The cache every web worker shares (``CACHES["shared"]``; ``default`` where a deployment
    configures no such alias)."""
    return caches["shared"] if "shared" in settings.CACHES else caches["default"]


def incr(key: str, timeout: int, store: BaseCache | None = None) -> int:
    """Add one to the counter ``key`` (created with ``timeout`` seconds to live)."""
    store = store or cache
    try:
        return store.incr(key)
    except ValueError:  # missing or expired
        if store.add(key, 1, timeout):
            return 1
        return store.incr(key)  # another request created it meanwhile


# --- login lock-out ----------------------------------------------------------------------------


class LoginLocked(Throttled):
    """Too many failed logins for this username: locked for ``wait`` seconds."""

    default_detail = "Too many failed logins for this account; try again later."
    default_code = "login_locked"


class LoginLockout:
    """Consecutive failed logins of one username, and its lock."""

    PREFIX = "preflab:login"

    def __init__(self, username: str) -> None:
        # case-folded and hashed: "Ann" and "ann" share a count, and no username is stored
        digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
        self._failures_key = f"{self.PREFIX}:failures:{digest}"
        self._lock_key = f"{self.PREFIX}:locked:{digest}"

    @staticmethod
    def limit() -> int:
        return int(settings.PREFLAB_LOGIN_LOCKOUT_FAILURES)

    @staticmethod
    def seconds() -> int:
        return int(settings.PREFLAB_LOGIN_LOCKOUT_SECONDS)

    def check(self) -> None:
        """Raise :class:`LoginLocked` while the username is locked."""
        if self.limit() <= 0:
            return
        until = shared_cache().get(self._lock_key)
        if until is not None:
            wait = float(until) - time.time()
            if wait > 0:
                raise LoginLocked(wait=wait)

    def failed(self) -> None:
        """Count one failure; the N-th in a row locks the username."""
        limit = self.limit()
        if limit <= 0:
            return
        seconds = self.seconds()
        # the count of a run of failures is forgotten after the lock-out period without one
        if incr(self._failures_key, seconds, shared_cache()) >= limit:
            shared_cache().set(self._lock_key, time.time() + seconds, seconds)
            shared_cache().delete(self._failures_key)

    def succeeded(self) -> None:
        shared_cache().delete(self._failures_key)

    def reset(self) -> None:
        """Unlock (for an administrator: ``LoginLockout("name").reset()`` in a shell)."""
        shared_cache().delete_many([self._failures_key, self._lock_key])


# --- per-client login rate ---------------------------------------------------------------------


def client_address(request: Any) -> str:
    """The client's address: the socket's peer, or — behind ``PREFLAB_TRUSTED_PROXIES``
    proxies — the address the outermost trusted proxy saw. A client-supplied
    ``X-Forwarded-For`` is not trusted otherwise (DRF's ``NUM_PROXIES``)."""
    return str(BaseThrottle().get_ident(request))


class LoginRate:
    """Password attempts per client address, ``PREFLAB_LOGIN_RATE`` per fixed window, shared by
    every way to log in with a password (the API's session and token logins, the Django
    admin): the authentication backend counts each attempt once (:meth:`hit`); the API reads
    the count first (:meth:`wait`) to answer 429 with ``Retry-After``."""

    PREFIX = "preflab:login-client"

    def __init__(self, request: Any) -> None:
        self.count, self.period = parse_rate(settings.PREFLAB_LOGIN_RATE)
        window = int(time.time() // self.period)
        digest = hashlib.sha256(client_address(request).encode()).hexdigest()[:32]
        self._key = f"{self.PREFIX}:{digest}:{window}"
        self._window_ends = (window + 1) * self.period

    def wait(self) -> float | None:
        """Seconds until the next attempt is allowed, or None when one is allowed now."""
        if int(shared_cache().get(self._key) or 0) < self.count:
            return None
        return max(self._window_ends - time.time(), 1.0)

    def hit(self) -> bool:
        """Count an attempt; False when it is over the rate."""
        return incr(self._key, self.period + 1, shared_cache()) <= self.count


# --- per-user API rate limit -------------------------------------------------------------------


class ApiUserRateThrottle(BaseThrottle):
    """At most ``PREFLAB_API_RATE`` requests per authenticated user and period (fixed
    window). Anonymous requests are not counted here (login has its own throttle and
    lock-out; everything else refuses them)."""

    PREFIX = "preflab:api"

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = getattr(settings, "PREFLAB_API_RATE", "")
        user = getattr(request, "user", None)
        if not rate or user is None or not user.is_authenticated:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        try:
            count = incr(f"{self.PREFIX}:{user.pk}:{period}:{window}", period + 1)
        except (RedisError, OSError):
            # The cache is down. A rate limit is not worth refusing paid work for: the
            # database is the source of truth and still answers, so let the request through.
            logger.warning("API rate limit not applied: the cache is unavailable", exc_info=True)
            return True
        if count <= limit:
            return True
        self._wait = max(1.0, (window + 1) * period - now)
        return False

    def wait(self) -> float | None:
        return None if self._wait is None else float(math.ceil(self._wait))
