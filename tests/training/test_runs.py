"""Reward-model training runs: validated configs, project isolation, a real worker on the
gpu queue training from an export of a synthetic preference, cancel."""

from __future__ import annotations

import io
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from annotation import queue
from annotation.export import create_export
from annotation.export_options import parse_export_options
from annotation.importing import ImportOptions, import_comparisons
from annotation.models import Project
from annotation.roles import Role
from annotation.services import create_project, set_membership
from tests.annotation.factories import jsonl
from tests.training.test_reward import WORDS
from training.models import ModelArtifact, RunMetric, RunStatus, TrainingRun

pytestmark = pytest.mark.django_db

CONFIG = {"learning_rate": 0.003, "epochs": 3, "batch_size": 16, "max_length": 256}


@pytest.fixture(autouse=True)
def _artifacts(settings: Any, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"


def synthetic_project(make_user: Any, n: int = 300) -> tuple[Project, Any]:
    """A project judged once per comparison by an annotator following a hidden rule: the
    answer that ends with "thanks" is better."""
    project = create_project(name="synthetic", overlap_k=1)
    rng = random.Random(0)
    rows = []
    for i in range(n):
        body = " ".join(rng.choices(WORDS, k=6))
        good, bad = f"{body} thanks", f"{body} whatever"
        a, b = (good, bad) if rng.random() < 0.5 else (bad, good)
        rows.append(
            {
                "id": f"s{i}",
                "prompt": " ".join(rng.choices(WORDS, k=5)) + "?",
                "response_a": a,
                "response_b": b,
            }
        )
    import_comparisons(project=project, stream=jsonl(*rows), options=ImportOptions())
    judge = make_user("rule-follower")
    set_membership(project=project, user=judge, role=Role.ANNOTATOR)
    while (lease := queue.lease_next(project_id=project.id, user=judge)) is not None:
        left = lease.content_b if lease.swapped else lease.content_a
        choice = "left" if left.endswith("thanks") else "right"
        queue.submit_judgment(
            project_id=project.id,
            assignment_id=lease.id,
            user=judge,
            data=queue.JudgmentInput(choice=choice, strength=3),
        )
    engineer = make_user("engineer")
    set_membership(project=project, user=engineer, role=Role.ML_ENGINEER)
    return project, engineer


def tiny_base() -> ModelArtifact:
    call_command(
        "create_tiny_models",
        "--vocab-size",
        "200",
        "--hidden",
        "32",
        "--layers",
        "1",
        stdout=io.StringIO(),
    )
    return ModelArtifact.objects.get(kind="policy")


def test_bad_config_is_a_400_with_the_field(make_user: Any, client: Client) -> None:
    project, engineer = synthetic_project(make_user, n=20)
    export = create_export(project=project, options=parse_export_options({}), user=engineer)
    base = tiny_base()
    client.force_login(engineer)
    response = client.post(
        f"/api/projects/{project.id}/training-runs/",
        {
            "dataset_export": export.id,
            "base_artifact": base.id,
            "config": {"learning_rate": -1, "epochs": "lots"},
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_config"
    assert set(response.json()["extra"]["fields"]) == {"learning_rate", "epochs"}
    assert TrainingRun.objects.count() == 0


def test_a_run_on_another_projects_export_is_refused(make_user: Any, client: Client) -> None:
    project, engineer = synthetic_project(make_user, n=20)
    export = create_export(project=project, options=parse_export_options({}), user=engineer)
    other = create_project(name="other")
    other_engineer = make_user("other-engineer")
    set_membership(project=other, user=other_engineer, role=Role.ML_ENGINEER)
    client.force_login(other_engineer)
    base = tiny_base().id
    url = f"/api/projects/{other.id}/training-runs/"
    response = client.post(
        url,
        {"dataset_export": export.id, "base_artifact": base, "config": {}},
        content_type="application/json",
    )
    missing = client.post(
        url,
        {"dataset_export": export.id + 1000, "base_artifact": base, "config": {}},
        content_type="application/json",
    )
    # another project's export answers exactly as one that does not exist
    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json()
    assert TrainingRun.objects.count() == 0


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.PROJECT_ADMIN])
def test_runs_are_refused_to_other_roles(make_user: Any, client: Client, role: str) -> None:
    project = create_project(name="p")
    user = make_user("someone")
    set_membership(project=project, user=user, role=role)
    client.force_login(user)
    assert client.get(f"/api/projects/{project.id}/training-runs/").status_code == 403


def test_cancel_of_a_queued_run(make_user: Any, client: Client, settings: Any) -> None:
    project, engineer = synthetic_project(make_user, n=20)
    export = create_export(project=project, options=parse_export_options({}), user=engineer)
    from training.reward_runs import create_reward_run
    from training.run_lifecycle import request_cancel

    run = create_reward_run(
        project=project,
        dataset_export_id=export.id,
        base_artifact_id=tiny_base().id,
        config={},
        user=engineer,
    )
    cancelled = request_cancel(run=run)
    assert cancelled.status == RunStatus.CANCELLED
    from training.reward_runs import execute_reward_run

    assert execute_reward_run(run.id).status == RunStatus.CANCELLED  # the row decides


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_reward_model_trains_on_a_real_gpu_queue_worker_over_redis(
    make_user: Any, client: Client, settings: Any, tmp_path: Path
) -> None:
    from tests.conftest import start_worker, stop_worker, worker_env

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the suite's broker is not Redis (make test sets it when Redis answers)")
    project, engineer = synthetic_project(make_user)
    export = create_export(
        project=project, options=parse_export_options({"test_fraction": 0.2}), user=engineer
    )
    base = tiny_base()
    worker = start_worker(
        worker_env(ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT)),
        queues="gpu",
        log=tmp_path / "worker.log",
    )
    try:
        client.force_login(engineer)
        created = client.post(
            f"/api/projects/{project.id}/training-runs/",
            {"dataset_export": export.id, "base_artifact": base.id, "config": CONFIG},
            content_type="application/json",
        )
        assert created.status_code == 201, created.content
        url = f"/api/projects/{project.id}/training-runs/{created.json()['id']}/"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            body = client.get(url).json()
            if body["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.5)
    finally:
        stop_worker(worker)
    assert body["status"] == "succeeded", (body, (tmp_path / "worker.log").read_text()[-3000:])
    assert body["metrics"]["eval"]["accuracy"] >= 0.9, body["metrics"]
    artifact = ModelArtifact.objects.get(pk=body["output_artifact_id"])
    assert artifact.kind == "reward" and artifact.dataset_export_id == export.id
    assert artifact.parent_id == base.id
    assert RunMetric.objects.filter(run_id=body["id"]).exists()
    assert "training.gpu.train_reward_model" in (tmp_path / "worker.log").read_text()
    assert json.loads(json.dumps(body["config"]))["epochs"] == 3.0


def test_watchdog_fails_a_stalled_run_when_so_configured(make_user: Any, settings: Any) -> None:
    from django.utils import timezone

    from training.reward_runs import create_reward_run
    from training.run_lifecycle import reap_stalled_runs

    project, engineer = synthetic_project(make_user, n=20)
    export = create_export(project=project, options=parse_export_options({}), user=engineer)
    run = create_reward_run(
        project=project,
        dataset_export_id=export.id,
        base_artifact_id=tiny_base().id,
        config={},
        user=engineer,
    )
    stale = timezone.now() - timezone.timedelta(seconds=settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT + 5)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, heartbeat_at=stale, attempts=1, on_worker_lost="fail"
    )
    assert reap_stalled_runs() == {"requeued": [], "failed": [run.pk]}
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "stopped heart-beating" in run.error


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_is_resumed_from_its_checkpoint_by_the_watchdog(
    make_user: Any, settings: Any, tmp_path: Path
) -> None:
    import os
    import signal

    from tests.conftest import start_worker, stop_worker, worker_env
    from training.reward_runs import create_reward_run
    from training.run_lifecycle import reap_stalled_runs, run_checkpoint_dir

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the suite's broker is not Redis (make test sets it when Redis answers)")
    project, engineer = synthetic_project(make_user)
    export = create_export(
        project=project, options=parse_export_options({"test_fraction": 0.2}), user=engineer
    )
    base = tiny_base()
    env = worker_env(ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT))
    first = start_worker(env, queues="gpu", log=tmp_path / "worker-1.log")
    run = create_reward_run(
        project=project,
        dataset_export_id=export.id,
        base_artifact_id=base.id,
        user=engineer,
        config=CONFIG | {"epochs": 4, "checkpoint_steps": 10, "logging_steps": 5},
    )
    checkpoint = run_checkpoint_dir(run) / "checkpoint-20"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (checkpoint / "trainer_state.json").exists():
        time.sleep(0.1)
    assert checkpoint.exists(), (tmp_path / "worker-1.log").read_text()[-3000:]
    os.kill(first.pid, signal.SIGKILL)  # as the OOM killer would
    first.wait()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.output_artifact is None
    assert not ModelArtifact.objects.filter(kind="reward").exists()
    last_metric_before_kill = RunMetric.objects.filter(run=run).order_by("-id").first()
    assert last_metric_before_kill is not None

    settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT = 1
    time.sleep(1.5)
    second = start_worker(env, queues="gpu", log=tmp_path / "worker-2.log")
    try:
        assert reap_stalled_runs()["requeued"] == [run.pk]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
                break
            time.sleep(0.3)
    finally:
        stop_worker(second)
    assert run.status == RunStatus.SUCCEEDED, (tmp_path / "worker-2.log").read_text()[-3000:]
    assert run.attempts == 2
    after_kill = RunMetric.objects.filter(run=run, id__gt=last_metric_before_kill.id)
    first_after = after_kill.order_by("id").first()
    assert first_after is not None
    # the second attempt continued from checkpoint-20: it did not start over at step 0
    assert first_after.step > 20, list(after_kill.values_list("step", flat=True))
    assert ModelArtifact.objects.filter(kind="reward").count() == 1


def train_with_the_command(make_user: Any, config: dict[str, Any]) -> dict[str, Any]:
    """``manage.py train_reward_model --wait`` on a small synthetic project; its JSON output."""
    project, engineer = synthetic_project(make_user, n=120)
    export = create_export(
        project=project, options=parse_export_options({"test_fraction": 0.2}), user=engineer
    )
    base = tiny_base()
    out = io.StringIO()
    call_command(
        "train_reward_model",
        str(project.id),
        "--export",
        str(export.id),
        "--base",
        str(base.id),
        "--user",
        "engineer",
        "--wait",
        "--config",
        json.dumps(CONFIG | config),
        stdout=out,
    )
    return dict(json.loads(out.getvalue()))


@pytest.mark.slow
def test_management_command_trains_in_process(make_user: Any) -> None:
    result = train_with_the_command(make_user, {"epochs": 1})
    assert result["status"] == "succeeded"
    assert "accuracy" in result["metrics"]["eval"]
    assert ModelArtifact.objects.filter(kind="reward").count() == 1


def test_admin_lists_runs_and_queues_a_new_one(make_user: Any, client: Client) -> None:
    project, engineer = synthetic_project(make_user, n=20)
    export = create_export(project=project, options=parse_export_options({}), user=engineer)
    base = tiny_base()
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    assert client.get("/admin/training/modelartifact/").status_code == 200
    assert client.get("/admin/training/trainingrun/add/").status_code == 200
    form = {"project": project.id, "dataset_export": export.id, "base_artifact": base.id}
    bad = client.post("/admin/training/trainingrun/add/", form | {"config": '{"epochs": -1}'})
    assert bad.status_code == 200 and b"epochs" in bad.content
    assert TrainingRun.objects.count() == 0
    good = client.post("/admin/training/trainingrun/add/", form | {"config": '{"epochs": 1}'})
    assert good.status_code == 302
    run = TrainingRun.objects.get()
    assert run.status == RunStatus.QUEUED and run.config["epochs"] == 1.0
    assert run.created_by.username == "root"
    assert client.get("/admin/training/trainingrun/").status_code == 200


@pytest.mark.slow
def test_an_ensemble_run_registers_one_scorable_artifact(make_user: Any) -> None:
    from training.ml.scoring import RewardScorer
    from training.registry import artifact_dir

    result = train_with_the_command(make_user, {"epochs": 1, "ensemble_size": 2})
    assert result["status"] == "succeeded"
    artifact = ModelArtifact.objects.get(kind="reward")
    assert artifact.metrics["ensemble_size"] == 2
    scorer = RewardScorer(artifact_dir(artifact), max_length=256)
    assert scorer.size == 2
    assert len(scorer.score_exchanges(["x"], [" thanks"]).scores.mean) == 1


def test_artifacts_api_lists_this_projects_and_shared_models(
    make_user: Any, client: Client
) -> None:
    project, engineer = synthetic_project(make_user, n=5)
    base = tiny_base()
    client.force_login(engineer)
    body = client.get(f"/api/projects/{project.id}/artifacts/").json()
    assert {a["id"] for a in body["results"]} == {base.id, base.parent_id}
    annotator = make_user("someone-else")
    set_membership(project=project, user=annotator, role=Role.ANNOTATOR)
    client.force_login(annotator)
    assert client.get(f"/api/projects/{project.id}/artifacts/").status_code == 403
