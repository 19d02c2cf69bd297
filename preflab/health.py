"""Health checks of the database and the Celery broker, used by ``/healthz``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from preflab.celery import app as celery_app


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    millis: float


def check_database() -> CheckResult:
    """Run ``SELECT 1`` on the default database."""
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means unhealthy; the reason goes in the body
        return CheckResult(False, f"{type(exc).__name__}: {exc}", _ms(started))
    return CheckResult(True, connection.vendor, _ms(started))


def check_broker(timeout: int = 2) -> CheckResult:
    """Open a connection to the Celery broker (or check the filesystem broker's folders)."""
    started = time.perf_counter()
    if settings.BROKER_IS_FILESYSTEM:
        folder_options: dict[str, Any] = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders = [Path(folder_options["data_folder_in"]), Path(folder_options["data_folder_out"])]
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing:
            return CheckResult(False, f"broker folder missing: {', '.join(missing)}", _ms(started))
        return CheckResult(True, "filesystem", _ms(started))
    try:
        with celery_app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
            options: dict[str, Any] = dict(conn.transport_options or {})
            options.update({"socket_connect_timeout": timeout, "socket_timeout": timeout})
            conn.transport_options = options
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=int(timeout) or 1)
            transport = conn.transport_cls
    except Exception as exc:  # any failure means unhealthy
        return CheckResult(False, f"{type(exc).__name__}: {exc}", _ms(started))
    return CheckResult(True, str(transport), _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
