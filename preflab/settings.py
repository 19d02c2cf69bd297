"""Preflab settings: everything that varies between machines comes from the environment.

Embedded default (no servers): SQLite under ``var/`` and kombu's ``filesystem://`` broker under
``var/broker``. Production: ``DATABASE_URL=postgres://…`` and ``CELERY_BROKER_URL=redis://…``.
See the configuration table in README.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

django_stubs_ext.monkeypatch()  # lets generic classes (ModelAdmin[Model]) be subscripted

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean from the environment ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list from the environment."""
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


VAR_DIR = Path(os.environ.get("PREFLAB_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)

_DEV_SECRET_KEY = "django-insecure-preflab-development-only-key-never-use-in-production"  # noqa: S105
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
            "(a development key is used only with DJANGO_DEBUG=1)."
        )
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "annotation",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "preflab.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if env_bool("PREFLAB_QUERY_COUNT_HEADER", False):
    MIDDLEWARE.insert(0, "preflab.query_count.QueryCountHeaderMiddleware")

ROOT_URLCONF = "preflab.urls"
WSGI_APPLICATION = "preflab.wsgi.application"
ASGI_APPLICATION = "preflab.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'preflab.sqlite3'}"
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process and the worker read while one writes; IMMEDIATE transactions
    # take the write lock up front, so concurrent writers queue instead of failing.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not :memory:) so that worker processes started by tests see the test database.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test-preflab.sqlite3")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (Redis when REDIS_URL is set) ------------------------------------------------------
# "shared" holds what every web worker must see alike — the login lock-out and login rate —
# so that a promise such as "locked after 5 failures" holds whichever worker answers. With
# Redis both aliases are Redis; on the embedded default "default" stays in process memory
# (the per-user API rate is on the annotation hot path) and "shared" is a file cache under
# PREFLAB_VAR_DIR that every gunicorn worker of the host reads.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    _redis = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "preflab",
    }
    CACHES = {"default": _redis, "shared": _redis}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "shared-cache"),
        },
    }

# --- Auth -------------------------------------------------------------------------------------
# Every password login (API session and token logins, the Django admin) passes the lock-out
# and the per-client login rate there.
AUTHENTICATION_BACKENDS = ["preflab.auth_backend.GuardedModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files: the built single-page app (frontend/dist) served by WhiteNoise -------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [FRONTEND_DIST] if FRONTEND_DIST.is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# Vite already puts a content hash in every asset name: cache those forever.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^.+/assets/.+-[0-9A-Za-z_-]{8,}\.\w+$"

# --- Artifacts --------------------------------------------------------------------------------
ARTIFACT_ROOT = Path(os.environ.get("ARTIFACT_ROOT", VAR_DIR / "artifacts")).resolve()
ARTIFACT_ROOT.mkdir(parents=True, exist_ok=True)


def _model_roots(value: str) -> list[Path]:
    """``PREFLAB_MODEL_ROOTS``: colon-separated absolute directories an ML engineer may register
    existing model directories from (in place). Empty: only ``ARTIFACT_ROOT`` (see
    ``training.model_registration.model_roots``)."""
    roots = [part for part in value.split(":") if part.strip()]
    for part in roots:
        if not Path(part).is_absolute():
            raise ImproperlyConfigured(f"PREFLAB_MODEL_ROOTS: {part!r} is not an absolute path.")
    return [Path(part).resolve() for part in roots]


PREFLAB_MODEL_ROOTS = _model_roots(os.environ.get("PREFLAB_MODEL_ROOTS", ""))

# --- Django REST framework ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.authentication.HashedTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "preflab.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "preflab.errors.exception_handler",
    # Login and token views set their own throttle ("login" scope) and so skip this one.
    "DEFAULT_THROTTLE_CLASSES": ["preflab.throttling.ApiUserRateThrottle"],
    # Behind N reverse proxies the client is the N-th address from the end of
    # X-Forwarded-For; with 0 (the default) the header is ignored and the socket's peer counts.
    "NUM_PROXIES": int(os.environ.get("PREFLAB_TRUSTED_PROXIES", "0")),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Preflab API",
    "DESCRIPTION": "Preference annotation, agreement, export and RLHF training.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ExcludeOrKeepEnum": ["exclude", "keep"]},
    "PATH_CONVERTER_OVERRIDES": {"id": int},  # preflab.converters: a 64-bit database id
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
BROKER_IS_FILESYSTEM = CELERY_BROKER_URL.startswith("filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if BROKER_IS_FILESYSTEM:
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    # The filesystem transport has no fanout exchange: no broadcast remote control.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}

_default_result_backend = (
    f"file://{VAR_DIR / 'celery-results'}" if BROKER_IS_FILESYSTEM else CELERY_BROKER_URL
)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", _default_result_backend)
if CELERY_RESULT_BACKEND.startswith("file://"):
    Path(CELERY_RESULT_BACKEND.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (
    Queue("default", routing_key="default"),
    Queue("gpu", routing_key="gpu"),
)
# Routing by task name: everything under ``training.gpu.`` runs on a GPU host.
CELERY_TASK_ROUTES = {"training.gpu.*": {"queue": "gpu", "routing_key": "gpu"}}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# acks_late is declared per task, on the idempotent ones only.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "expire-leases": {"task": "annotation.expire_leases", "schedule": 60.0},
    "refresh-quality": {"task": "annotation.refresh_quality", "schedule": 60.0},
    "training-watchdog": {"task": "training.watchdog", "schedule": 60.0},
}

# --- Security (production, i.e. DEBUG off) ----------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

PREFLAB_MAX_IMPORT_BYTES = int(os.environ.get("PREFLAB_MAX_IMPORT_BYTES", str(2 * 1024**3)))
PREFLAB_QUALITY_RECOMPUTE_EVERY = int(os.environ.get("PREFLAB_QUALITY_RECOMPUTE_EVERY", "200"))
PREFLAB_EXPORT_SYNC_MAX = int(os.environ.get("PREFLAB_EXPORT_SYNC_MAX", "20000"))
PREFLAB_RUN_HEARTBEAT_TIMEOUT = int(os.environ.get("PREFLAB_RUN_HEARTBEAT_TIMEOUT", "300"))
# Seconds between two heartbeats of a working run (a background thread); 0: a third of the
# timeout above.
PREFLAB_RUN_HEARTBEAT_INTERVAL = float(os.environ.get("PREFLAB_RUN_HEARTBEAT_INTERVAL", "0"))
# How a training run's step executes when its request names no launcher: "inprocess" (in
# the worker's own process), "subprocess", "accelerate" (training.launch).
PREFLAB_DEFAULT_LAUNCHER = os.environ.get("PREFLAB_DEFAULT_LAUNCHER", "inprocess")
# Seconds a launched step has to stop after SIGTERM (a cancel) before it gets SIGKILL.
PREFLAB_LAUNCH_TERMINATE_GRACE = float(os.environ.get("PREFLAB_LAUNCH_TERMINATE_GRACE", "30"))
# Per-user limit of authenticated API requests (fixed window, in the cache); "" turns it off.
PREFLAB_API_RATE = os.environ.get("PREFLAB_API_RATE", "6000/min")
# Lifetime of a new API token in seconds (0: never expires); 30 days by default.
PREFLAB_TOKEN_TTL = int(os.environ.get("PREFLAB_TOKEN_TTL", str(30 * 86400)))
# Password attempts per client address, on every login path (preflab.throttling.LoginRate).
PREFLAB_LOGIN_RATE = os.environ.get("PREFLAB_LOGIN_RATE", "20/min")
# Consecutive failed logins of one username before it is locked, and for how long (0: never).
PREFLAB_LOGIN_LOCKOUT_FAILURES = int(os.environ.get("PREFLAB_LOGIN_LOCKOUT_FAILURES", "5"))
PREFLAB_LOGIN_LOCKOUT_SECONDS = int(os.environ.get("PREFLAB_LOGIN_LOCKOUT_SECONDS", "900"))
# Import jobs (annotation.import_jobs): an upload up to this size is imported in the request,
# a larger one on a worker; a running job whose heartbeat is older than the stale limit lost
# its worker (used where the database has no advisory locks, i.e. SQLite).
PREFLAB_IMPORT_INLINE_BYTES = int(os.environ.get("PREFLAB_IMPORT_INLINE_BYTES", str(5 * 1024**2)))
PREFLAB_IMPORT_JOB_STALE_SECONDS = int(os.environ.get("PREFLAB_IMPORT_JOB_STALE_SECONDS", "300"))
