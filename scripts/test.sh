#!/usr/bin/env bash
# The whole suite: ruff, mypy, frontend type-check + unit tests, then pytest (unit, API,
# PostgreSQL, real Celery workers, headless Chromium).
#
# Servers: DATABASE_URL / CELERY_BROKER_URL are used as given. When unset, a PostgreSQL on
# 127.0.0.1:5432 and a Redis on 127.0.0.1:6379 are used if they answer; otherwise the suite
# runs on the embedded default (SQLite + filesystem broker) and says which tests it skipped
# for want of a server. Under CI=true a missing server is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
export PYTHONUNBUFFERED=1

step() { printf '\n==> %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

if [[ -z "${DATABASE_URL:-}" ]] && port_open 127.0.0.1 5432; then
  if psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1" >/dev/null 2>&1; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/preflab"
  fi
fi
if [[ -z "${PREFLAB_TEST_REDIS_URL:-}" ]] && port_open 127.0.0.1 6379; then
  export PREFLAB_TEST_REDIS_URL="redis://127.0.0.1:6379/15"
fi
if [[ -z "${CELERY_BROKER_URL:-}" && -n "${PREFLAB_TEST_REDIS_URL:-}" ]]; then
  export CELERY_BROKER_URL="$PREFLAB_TEST_REDIS_URL"
fi
echo "database: ${DATABASE_URL:-embedded SQLite}"
echo "broker:   ${CELERY_BROKER_URL:-embedded filesystem://}"
echo "redis:    ${PREFLAB_TEST_REDIS_URL:-none (Redis tests will be skipped)}"

in_ci() { [[ "${CI:-}" =~ ^(1|true|yes|TRUE|True)$ ]]; }
if [[ ! -x /usr/bin/chromium && "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
  step "installing Debian chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/dev/null 2>&1 || echo "could not install chromium"
fi
if [[ ! -x /usr/bin/chromium ]]; then
  if in_ci; then
    echo "CI=true and /usr/bin/chromium is missing (apt-get install chromium): failing" >&2
    exit 1
  fi
  echo "no /usr/bin/chromium: the browser tests will be skipped"
fi

step "ruff"
ruff check .
ruff format --check .

step "mypy"
DJANGO_DEBUG=1 mypy .

step "frontend: tsc + vitest"
(cd frontend && npm run --silent typecheck && npm test --silent)

step "pytest"
set +e
pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc
