"""Fault injection with real processes: a Celery worker SIGKILLed mid-round, Redis restarted
while annotators submit, PostgreSQL refusing connections under the live API.

Each test breaks one real dependency and checks the invariants the design promises: the row,
not the broker, is the source of truth (a killed run resumes from its checkpoint and the round
publishes, with no half-registered artifact); no accepted judgment is lost; a database outage
is a 503 ``database_unavailable`` and the server recovers without a restart.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from django.db import connection
from django.db.models import Count
from django.test import override_settings
from psycopg import sql

from accounts.services import issue_token
from annotation.models import Comparison, Judgment, Project, QualitySnapshot
from annotation.roles import Role
from annotation.services import create_project, set_membership
from annotation.simulation import (
    SimulationConfig,
    SimulationReport,
    prepare_annotators,
    simulate,
)
from preflab.celery import app as celery_app
from tests.conftest import PrivateRedis, start_worker, stop_worker, wait_for, worker_env
from training.models import ModelArtifact, RLHFRound, RunMetric, RunStatus, TrainingRun

TERMINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


# --- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Api:
    """A fresh HTTP connection per request to the live server, with an API token."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def request(self, method: str, path: str) -> Answer:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, headers=self.headers | {"Connection": "close"})
            response = conn.getresponse()
            body = response.read().decode(errors="replace")
            headers = {k.lower(): v for k, v in response.getheaders()}
            return Answer(response.status, headers, body)
        finally:
            conn.close()

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str) -> Answer:
        return self.request("POST", path)


def forget_broker_connections() -> None:
    """Drop this process's pooled broker connections, as Celery does after a fork (not
    ``app.close()``: that also unregisters the app, and tasks imported later are missed)."""
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Point this process's Celery producer (the test's and the live server's) at ``url``.
    Celery reads the ``CELERY_BROKER_URL`` environment variable before its configuration."""
    original = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = url
    forget_broker_connections()
    try:
        with celery_app.producer_or_acquire() as producer:
            assert producer.connection.as_uri().endswith(url.rsplit(":", 1)[1])
        yield
    finally:
        if original is None:
            del os.environ["CELERY_BROKER_URL"]
        else:
            os.environ["CELERY_BROKER_URL"] = original
        forget_broker_connections()


def private_worker_env(broker: str, **overrides: str) -> dict[str, str]:
    """A worker on the private broker (tasks and results), reading the test database."""
    return worker_env(CELERY_BROKER_URL=broker, CELERY_RESULT_BACKEND=broker, **overrides)


# --- 1. a worker killed mid-round --------------------------------------------------------------


@pytest.fixture(scope="module")
def policy_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.ml.synthetic import PolicyShape, build_synthetic_policy

    return build_synthetic_policy(
        tmp_path_factory.mktemp("fault") / "policy",
        shape=PolicyShape(hidden=32, layers=1, heads=2, pretrain_steps=20),
    )


def assert_registry_consistent(root: Path) -> None:
    """Every artifact row points at a complete directory (its digest matches) and every
    directory of the registry has its row: nothing half-registered."""
    from training.registry import directory_digest

    rows = {a.path: a for a in ModelArtifact.objects.all()}
    for path, artifact in rows.items():
        folder = root / path
        assert folder.is_dir(), f"artifact {artifact.pk} has no directory {folder}"
        assert directory_digest(folder) == (artifact.sha256, artifact.size_bytes), path
    on_disk = {str(p.relative_to(root)) for p in (root / "models").glob("*/*") if p.is_dir()}
    assert on_disk == set(rows), {"without a row": on_disk - set(rows)}
    assert {p.name for p in root.iterdir()} <= {".staging", "models", "runs", "exports"}


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_round_is_resumed_from_its_checkpoint_and_the_round_publishes(
    make_user: Any,
    settings: Any,
    tmp_path: Path,
    policy_files: Path,
    private_redis: PrivateRedis,
) -> None:
    import torch

    from tests.training.test_rounds import CONFIG, base_policy, judged_project
    from training.rounds import start_round
    from training.run_lifecycle import reap_stalled_runs, run_checkpoint_dir

    settings.ARTIFACT_ROOT = root = tmp_path / "artifacts"
    project, engineer, _ = judged_project(make_user, n=24)
    base = base_policy(policy_files)
    # test_rounds' tiny round, with 60 PPO steps and a resumable state every 5
    policy = {"total_episodes": 480, "batch_size": 8, "mini_batch_size": 8, "max_new_tokens": 8}
    config = CONFIG | {"policy": policy | {"checkpoint_steps": 5}}
    env = private_worker_env(private_redis.url, ARTIFACT_ROOT=str(root), OMP_NUM_THREADS="1")
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]

    def tail() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())

    with celery_broker(private_redis.url):
        first = start_worker(env, log=logs[0])
        try:
            r = start_round(project=project, config=config, base_policy_id=base.pk, user=engineer)

            def policy_run_mid_way() -> TrainingRun | None:
                r.refresh_from_db()
                assert r.status not in TERMINAL, (r.status, r.error, tail())
                run = r.policy_run
                if run is None or run.status != RunStatus.RUNNING:
                    return None
                state = run_checkpoint_dir(run) / "ppo-state.pt"
                return run if state.exists() else None

            run = wait_for(
                "the policy run to checkpoint", policy_run_mid_way, timeout=90, interval=0.05
            )
            os.kill(first.pid, signal.SIGKILL)  # as the OOM killer would
            first.wait()
        finally:
            if first.poll() is None:
                stop_worker(first)
        checkpoint_step = int(
            torch.load(run_checkpoint_dir(run) / "ppo-state.pt", weights_only=False)["step"]
        )
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING and run.attempts == 1, tail()
        assert run.output_artifact_id is None and 0 < checkpoint_step < 60
        before = RunMetric.objects.filter(run=run).order_by("-id").values_list("id", flat=True)
        last_before = before.first() or 0  # metrics are written every couple of seconds

        second = start_worker(env, log=logs[1])
        try:
            settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT = 1  # the watchdog, with a short fuse
            requeued = wait_for(
                "the watchdog to re-queue the run",
                lambda: reap_stalled_runs()["requeued"],
                timeout=20,
                interval=0.3,
            )
            assert requeued == [run.pk]

            def round_finished() -> bool:
                r.refresh_from_db()
                return r.status in TERMINAL

            wait_for("the round to finish", round_finished, timeout=150, interval=0.3)
        finally:
            stop_worker(second)

    run.refresh_from_db()
    assert r.status == RunStatus.SUCCEEDED and r.step == "published", (r.error, tail())
    assert run.status == RunStatus.SUCCEEDED and run.attempts == 2
    assert run.metrics["resumed"] is True and run.metrics["steps"] == 60
    after = RunMetric.objects.filter(run=run, id__gt=last_before).order_by("id").first()
    assert after is not None and after.step == checkpoint_step + 1  # not from step 1
    # the steps the lost attempt logged after its checkpoint were redone: each is on record once
    steps = list(RunMetric.objects.filter(run=run).order_by("step").values_list("step", flat=True))
    assert steps == list(range(1, 61))
    policies = ModelArtifact.objects.filter(kind="policy", project=project)
    assert list(policies.values_list("id", flat=True)) == [r.policy_artifact_id]
    assert run.output_artifact_id == r.policy_artifact_id
    assert r.policy_artifact is not None and r.policy_artifact.parent_id == base.pk
    assert r.batch is not None and r.batch.comparison_count > 0
    assert RLHFRound.objects.get(pk=r.pk).steps["policy"]["status"] == "done"
    assert_registry_consistent(root)


# --- 2. Redis restarted while annotators submit ----------------------------------------------


def word_project(n: int, overlap_k: int) -> Project:
    import random

    from annotation.importing import ImportOptions, import_comparisons
    from tests.annotation.factories import jsonl
    from training.ml.synthetic import random_answer

    project = create_project(name="under fault", overlap_k=overlap_k)
    rng = random.Random(7)
    rows = [
        {
            "id": f"f{i}",
            "prompt": "Say something.",
            "response_a": random_answer(rng),
            "response_b": f"{random_answer(rng)} {i}",
        }
        for i in range(n)
    ]
    import_comparisons(project=project, stream=jsonl(*rows), options=ImportOptions())
    return project


def token_for(make_user: Any, project: Project, username: str, role: str) -> str:
    user = make_user(username)
    set_membership(project=project, user=user, role=role)
    return issue_token(user=user).key


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_redis_restart_while_annotators_submit_loses_no_accepted_judgment(
    live_server: Any, make_user: Any, tmp_path: Path, private_redis: PrivateRedis
) -> None:
    # Redis is the cache and the broker; the queue's truth is in PostgreSQL. The live server
    # uses the private Redis for both, so whatever touches Redis in a request feels the outage.
    n, k = 40, 2
    project = word_project(n, overlap_k=k)
    admin = token_for(make_user, project, "fault-admin", Role.PROJECT_ADMIN)
    api = Api(live_server.url, admin)
    recompute = f"/api/projects/{project.pk}/quality/recompute/"
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": private_redis.url,
            "KEY_PREFIX": "preflab",
        }
    }
    reports: list[SimulationReport] = []
    failures: list[BaseException] = []
    config = SimulationConfig(
        annotators=4, think_ms=40, prefix="fault", retry_backoff_s=0.05, max_retries=8
    )

    # set up here: the annotators' thread then touches no database, only the HTTP API
    credentials = prepare_annotators(project=project, count=config.annotators, prefix="fault")

    def annotate() -> None:
        try:
            reports.append(
                simulate(
                    base_url=live_server.url,
                    project_id=project.pk,
                    config=config,
                    credentials=credentials,
                )
            )
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    def judged() -> int:
        return Judgment.objects.filter(project=project).count()

    worker = start_worker(private_worker_env(private_redis.url), log=tmp_path / "worker.log")
    annotators = threading.Thread(target=annotate, daemon=True)
    try:
        with (
            override_settings(
                CACHES=caches, CELERY_BROKER_URL=private_redis.url, BROKER_IS_FILESYSTEM=False
            ),
            celery_broker(private_redis.url),
        ):
            assert api.post(recompute).status_code == 202  # the broker answers
            annotators.start()
            wait_for("the first judgments", lambda: judged() >= 10, timeout=30, interval=0.02)
            private_redis.kill()
            during = judged()
            health = api.get("/healthz")
            assert health.status_code == 503 and health.json()["checks"]["broker"]["ok"] is False
            refused = api.post(recompute)
            # a bounded outage (at most a few seconds: the annotators retry 5xx for longer)
            outage_ends = time.monotonic() + 3
            wait_for(
                "judgments during the outage, or its end",
                lambda: (
                    judged() >= during + 10
                    or not annotators.is_alive()
                    or time.monotonic() >= outage_ends
                ),
                timeout=10,
                interval=0.02,
            )
            private_redis.start()  # the same port, empty: no persistence
            assert api.get("/healthz").status_code == 200
            at_restart = judged()
            accepted = api.post(recompute)
            assert accepted.status_code == 202, accepted.text
            annotators.join(timeout=60)
            assert not annotators.is_alive(), "the simulated annotators did not finish"
            # the worker reconnected by itself and ran the recompute enqueued after the restart
            snapshot = wait_for(
                "a quality snapshot from the reconnected worker",
                lambda: QualitySnapshot.objects.filter(
                    project=project, judgment_count__gte=at_restart
                ).first(),
                timeout=60,
                interval=0.2,
            )
    finally:
        stop_worker(worker)
    assert not failures, failures
    (report,) = reports

    assert refused.status_code == 503, (refused.status_code, refused.text[:500])
    # a request that needs Redis says so, in the API's error shape (no HTML 500): the broker
    # when it enqueues, or the cache when the request path uses it (a rate limit, say)
    assert refused.json()["code"] in ("broker_unavailable", "cache_unavailable"), refused.text
    assert refused.headers.get("retry-after") == "5"
    # every submission the server accepted has its judgment row, and nothing else was stored
    rows = Judgment.objects.filter(project=project)
    accepted_ids = {s.assignment_id for s in report.submissions}
    assert accepted_ids == set(rows.values_list("assignment_id", flat=True))
    assert report.total == len(accepted_ids) == rows.count() == n * k
    pairs = Counter(rows.values_list("annotator_id", "comparison_id"))
    assert max(pairs.values()) == 1  # nobody judged a comparison twice
    counted = dict(
        rows.values("comparison_id").annotate(c=Count("id")).values_list("comparison_id", "c")
    )
    for comparison in Comparison.objects.filter(project=project):
        assert comparison.judgment_count == counted.get(comparison.pk, 0) == k, comparison.pk
        assert comparison.lease_count == 0
    # errors, if any, were 5xx or connection errors the annotators retried past
    assert set(report.errors) <= {"500", "502", "503", "connection"}, report.errors
    assert set(report.stopped.values()) == {"queue_empty"}, report.annotator_errors
    assert at_restart <= snapshot.judgment_count <= n * k


# --- 3. the database drops its connections -----------------------------------------------------


@contextmanager
def database_refusing_connections() -> Iterator[None]:
    """Terminate every session of the test database but this process's own and refuse new
    ones; always allow connections again on the way out."""
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_pid = cursor.fetchone()[0]
    s = connection.settings_dict
    admin = psycopg.connect(
        host=s.get("HOST") or "127.0.0.1",
        port=int(s.get("PORT") or 5432),
        user=s.get("USER") or "postgres",
        password=s.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )
    quoted = sql.Identifier(name)
    try:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(quoted))
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> %s",
                [name, own_pid],
            )
            yield
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(quoted))
    finally:
        admin.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_dropped_database_is_a_503_and_the_server_recovers_without_a_restart(
    live_server: Any, make_user: Any
) -> None:
    project = create_project(name="outage")
    token = token_for(make_user, project, "fault-engineer", Role.ML_ENGINEER)
    url = f"/api/projects/{project.pk}/"
    api = Api(live_server.url, token)
    assert api.get(url).status_code == 200
    with database_refusing_connections():
        down = api.get(url)
        health = api.get("/healthz")
    assert down.status_code == 503, (down.status_code, down.text[:500])
    assert down.headers["content-type"].startswith("application/json")
    body = down.json()
    assert body["code"] == "database_unavailable"
    assert "database is unavailable" in body["message"] and body["extra"] == {}
    assert down.headers.get("retry-after") == "5"
    assert health.status_code == 503
    assert health.json()["checks"]["database"]["ok"] is False
    # connections allowed again: the same server answers, nothing restarted
    up = api.get(url)
    assert up.status_code == 200, up.text[:500]
    assert up.json()["id"] == project.pk
    assert api.get("/healthz").status_code == 200
    assert Project.objects.filter(pk=project.pk).exists()  # this process's connection too
