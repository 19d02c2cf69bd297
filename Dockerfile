# Preflab production image.
#
#   docker build -t preflab .                        # CPU torch (default)
#   docker build -t preflab-gpu \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# Stage 1 builds the annotation UI; stage 2 is the Django/Celery runtime that
# serves it (web) or runs the task queues (worker, gpu-worker, beat).

# ---------------------------------------------------------------------------
# Stage 1: frontend bundle -> /build/frontend/dist
# ---------------------------------------------------------------------------
FROM node:20-bookworm-slim AS frontend

WORKDIR /build/frontend

# Dependencies first so the npm layer is cached until the lockfile changes.
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY frontend/ ./
RUN npm run build


# ---------------------------------------------------------------------------
# Stage 2: Python runtime
# ---------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime

# CPU wheels by default; a GPU image passes a CUDA index, e.g.
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_DEBUG=0 \
    ARTIFACT_ROOT=/data/artifacts

WORKDIR /app

# torch goes in first, at the version of requirements-torch.txt, from the chosen
# index, in its own (large, rarely changing) layer. The build differs by index
# (+cpu, +cu128, …), so torch is the one package outside the hashed lock.
COPY requirements-torch.txt ./
RUN pip install --index-url "${TORCH_INDEX_URL}" -r requirements-torch.txt

# Every other runtime dependency at exactly the locked version, each checked
# against its sha256 (requirements-runtime.lock: requirements.lock without the
# dev tools, both refreshed by `make lock`): torch, already installed,
# satisfies what the locked packages ask of it.
COPY requirements-runtime.lock ./
RUN pip install --require-hashes -r requirements-runtime.lock

# The project itself: nothing left to resolve (--no-deps), built with the locked
# setuptools (--no-build-isolation).
COPY pyproject.toml README.md manage.py ./
COPY preflab/ ./preflab/
COPY accounts/ ./accounts/
COPY annotation/ ./annotation/
COPY training/ ./training/
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info

# Built UI from stage 1.
COPY --from=frontend /build/frontend/dist /app/frontend/dist

# Collect static assets at build time. The secret key only exists for this
# command; the real one is supplied at runtime (DJANGO_SECRET_KEY).
RUN DJANGO_SECRET_KEY=collectstatic-build-only-not-secret \
    python manage.py collectstatic --noinput

# Unprivileged runtime user. It owns:
#  - /data/artifacts, so a fresh named volume mounted there inherits writable
#    ownership;
#  - the /app/var folder itself (not the collected static files inside it),
#    where settings.VAR_DIR lives and celery beat keeps its schedule file.
RUN groupadd --system --gid 10001 preflab \
    && useradd --system --uid 10001 --gid preflab --home-dir /app \
        --no-create-home --shell /usr/sbin/nologin preflab \
    && mkdir -p /data/artifacts /app/var \
    && chown -R preflab:preflab /data \
    && chown preflab:preflab /app/var

USER preflab

EXPOSE 8000

CMD ["gunicorn", "preflab.wsgi:application", \
     "--bind", "0.0.0.0:8000", \
     "--workers", "3", \
     "--timeout", "300", \
     "--access-logfile", "-"]
