"""A task enqueued by the web process runs in a real worker process, over Redis and over
the embedded filesystem broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.conftest import REDIS_URL, REPO, start_worker, stop_worker

ENQUEUE_AND_WAIT = (
    "from preflab.tasks import ping; r = ping.delay(); print('RESULT', r.get(timeout=60)['pong'])"
)


def web_process_env(tmp_path: Path, broker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("CELERY_RESULT_BACKEND", None)
    env.update(
        {
            "DJANGO_DEBUG": "1",
            "PREFLAB_VAR_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "CELERY_BROKER_URL": broker,
        }
    )
    return env


def enqueue_from_another_process(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", ENQUEUE_AND_WAIT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_task_runs_in_a_real_worker_over_the_filesystem_broker(tmp_path: Path) -> None:
    env = web_process_env(tmp_path, "filesystem://")
    worker = start_worker(env, log=tmp_path / "worker.log")
    try:
        assert "RESULT True" in enqueue_from_another_process(env)
    finally:
        stop_worker(worker)
    assert "preflab.ping" in (tmp_path / "worker.log").read_text()


@pytest.mark.slow
@pytest.mark.redis
def test_task_runs_in_a_real_worker_over_redis(tmp_path: Path) -> None:
    env = web_process_env(tmp_path, REDIS_URL)
    worker = start_worker(env, log=tmp_path / "worker.log")
    try:
        assert "RESULT True" in enqueue_from_another_process(env)
    finally:
        stop_worker(worker)
    assert "preflab.ping" in (tmp_path / "worker.log").read_text()


@pytest.mark.slow
def test_admin_enqueues_a_ping_through_the_api_and_a_worker_answers(
    celery_worker: subprocess.Popen[bytes], client: Client, make_user: Any
) -> None:
    client.force_login(make_user("staff", is_staff=True))
    enqueued = client.post("/api/system/worker-ping/")
    assert enqueued.status_code == 202
    task_id = enqueued.json()["task_id"]
    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline:
        body = client.get(f"/api/system/worker-ping/{task_id}/").json()
        state = body["state"]
        if state == "SUCCESS":
            assert body["result"]["pong"] is True
            assert body["result"]["pid"] == celery_worker.pid
            break
        time.sleep(0.3)
    assert state == "SUCCESS"


def test_unknown_queue_is_rejected(client: Client, make_user: Any, db: None) -> None:
    client.force_login(make_user("staff", is_staff=True))
    response = client.post("/api/system/worker-ping/?queue=nope")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
