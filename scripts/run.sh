#!/usr/bin/env bash
# Run Preflab on its embedded default: SQLite + filesystem broker under var/, two seeded demo
# projects (one to annotate, one with weeks of simulated judgments to start an RLHF round on),
# gunicorn + one Celery worker (both queues). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
export PYTHONUNBUFFERED=1
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

"$VENV/bin/python" manage.py migrate --noinput
"$VENV/bin/python" manage.py seed_demo

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "Stopping Preflab…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

"$VENV/bin/celery" -A preflab worker -B -Q default,gpu --concurrency 1 --loglevel INFO \
  --hostname "preflab-embedded@%h" &
pids+=($!)
"$VENV/bin/gunicorn" preflab.wsgi:application --bind "$HOST:$PORT" --workers 2 \
  --threads 4 --timeout 300 --access-logfile - --log-level info &
pids+=($!)

sleep 2
cat <<MSG

  Preflab is running at http://$HOST:$PORT/
  API docs: http://$HOST:$PORT/api/docs/   Admin: http://$HOST:$PORT/admin/
  Logins are printed above by seed_demo. Press Ctrl-C to stop web and worker.

MSG
wait -n "${pids[@]}"
