"""Policy runs (PPO / GRPO / RLOO / DPO) and generation runs through the API and the run
machinery: validation answered at once with the field named, roles, a real gpu-queue worker
running PPO and a generation into a batch annotators can lease, metrics, cancel, watchdog."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from annotation import queue
from annotation.importing import ImportOptions, import_comparisons
from annotation.models import Batch, Comparison, Project, Prompt, Response
from annotation.roles import Role
from annotation.services import create_project, set_membership
from tests.annotation.factories import jsonl
from training.ml.synthetic import PolicyShape, build_synthetic_policy, random_answer
from training.models import ModelArtifact, RunMetric, RunStatus, TrainingRun
from training.registry import register_artifact, staging_dir

pytestmark = pytest.mark.django_db

PPO_CONFIG = {"total_episodes": 32, "batch_size": 8, "mini_batch_size": 4, "max_new_tokens": 8}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny synthetic policy and an (untrained) reward head on it, built once."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    root = tmp_path_factory.mktemp("policy-runs")
    policy = build_synthetic_policy(
        root / "policy", shape=PolicyShape(hidden=32, layers=1, heads=2, pretrain_steps=20)
    )
    reward = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1)
    reward.save_pretrained(root / "reward")
    AutoTokenizer.from_pretrained(policy).save_pretrained(root / "reward")
    return {"policy": policy, "reward": root / "reward"}


@pytest.fixture(autouse=True)
def _artifacts(settings: Any, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"


def register(files: Path, kind: str, project: Project | None = None) -> ModelArtifact:
    staged = staging_dir("test")
    shutil.copytree(files, staged, dirs_exist_ok=True)
    return register_artifact(source=staged, name=f"test-{kind}", kind=kind, project=project)


def project_with_prompts(make_user: Any, n: int = 6) -> tuple[Project, Any]:
    import random

    project = create_project(name="rl", overlap_k=1)
    rng = random.Random(0)
    rows = [
        {
            "id": f"q{i}",
            "prompt": [{"role": "user", "content": f"Say something about the sea {i}."}],
            "response_a": random_answer(rng),
            "response_b": random_answer(rng),
        }
        for i in range(n)
    ]
    import_comparisons(project=project, stream=jsonl(*rows), options=ImportOptions())
    engineer = make_user("engineer")
    set_membership(project=project, user=engineer, role=Role.ML_ENGINEER)
    return project, engineer


def post_run(client: Client, project: Project, body: dict[str, Any]) -> Any:
    return client.post(
        f"/api/projects/{project.id}/training-runs/", body, content_type="application/json"
    )


def test_policy_run_requests_are_validated_with_the_field_named(
    make_user: Any, client: Client, model_files: dict[str, Path]
) -> None:
    project, engineer = project_with_prompts(make_user)
    policy = register(model_files["policy"], "policy")
    reward = register(model_files["reward"], "reward")
    client.force_login(engineer)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"kind": "ppo", "base_artifact": policy.id}, 400, "reward_artifact"),
        (
            {"kind": "ppo", "base_artifact": reward.id, "reward_artifact": reward.id},
            400,
            "base_artifact",
        ),
        (
            {
                "kind": "ppo",
                "base_artifact": policy.id,
                "reward_artifact": reward.id,
                "config": {"cliprange": 5, "colour": "red"},
            },
            400,
            "cliprange",
        ),
        (
            {
                "kind": "grpo",
                "base_artifact": policy.id,
                "reward_artifact": reward.id,
                "config": {"batch_size": 10, "num_generations": 4},
            },
            400,
            "batch_size",
        ),
        ({"kind": "dpo", "base_artifact": policy.id}, 400, "dataset_export"),
        (
            {
                "kind": "rloo",
                "base_artifact": policy.id,
                "reward_artifact": reward.id,
                "prompt_ids": [999_999],
            },
            400,
            "prompt_ids",
        ),
        (
            {
                "kind": "generate",
                "base_artifact": policy.id,
                "config": {"pairing": "best_vs_worst", "sampling": {"n": 2}},
            },
            400,
            "reward",
        ),
        (
            {
                "kind": "generate",
                "base_artifact": policy.id,
                "config": {"sampling": {"temperature": 0}},
            },
            400,
            "temperature",
        ),
    ]
    for body, status, field in cases:
        response = post_run(client, project, body)
        assert response.status_code == status, (body, response.content)
        assert field in str(response.json()["extra"]) or field in response.json()["message"], (
            body,
            response.json(),
        )
    assert TrainingRun.objects.count() == 0


def test_artifacts_and_prompts_of_another_project_are_refused(
    make_user: Any, client: Client, model_files: dict[str, Path]
) -> None:
    project, engineer = project_with_prompts(make_user)
    other, _ = project_with_prompts(lambda name: make_user(f"other-{name}"))
    foreign_reward = register(model_files["reward"], "reward", project=other)
    policy = register(model_files["policy"], "policy")
    client.force_login(engineer)
    response = post_run(
        client,
        project,
        {"kind": "ppo", "base_artifact": policy.id, "reward_artifact": foreign_reward.id},
    )
    missing = post_run(
        client,
        project,
        {"kind": "ppo", "base_artifact": policy.id, "reward_artifact": foreign_reward.id + 1000},
    )
    # another project's artifact answers exactly as one that does not exist
    assert response.status_code == missing.status_code == 400
    assert response.json() == missing.json()
    other_prompt = Prompt.objects.filter(project=other).first()
    assert other_prompt is not None
    response = post_run(
        client,
        project,
        {
            "kind": "generate",
            "base_artifact": policy.id,
            "prompt_ids": [other_prompt.id],
            "config": {"sampling": {"n": 2}},
        },
    )
    assert response.status_code == 400
    assert TrainingRun.objects.count() == 0


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.PROJECT_ADMIN])
def test_other_roles_cannot_start_policy_runs_or_read_metrics(
    make_user: Any, client: Client, model_files: dict[str, Path], role: str
) -> None:
    project, engineer = project_with_prompts(make_user)
    policy = register(model_files["policy"], "policy")
    reward = register(model_files["reward"], "reward")
    from training.policy_runs import create_policy_run

    run = create_policy_run(
        project=project,
        kind="ppo",
        base_artifact_id=policy.id,
        reward_artifact_id=reward.id,
        config=PPO_CONFIG,
        user=engineer,
    )
    user = make_user("someone")
    set_membership(project=project, user=user, role=role)
    client.force_login(user)
    body = {"kind": "ppo", "base_artifact": policy.id, "reward_artifact": reward.id}
    assert post_run(client, project, body).status_code == 403
    metrics_url = f"/api/projects/{project.id}/training-runs/{run.id}/metrics/"
    assert client.get(metrics_url).status_code == 403


def test_ppo_run_in_process_registers_a_policy_with_lineage_and_step_metrics(
    make_user: Any, client: Client, model_files: dict[str, Path]
) -> None:
    from training.policy_runs import create_policy_run, execute_policy_run

    project, engineer = project_with_prompts(make_user)
    policy = register(model_files["policy"], "policy")
    reward = register(model_files["reward"], "reward", project=project)
    run = create_policy_run(
        project=project,
        kind="ppo",
        base_artifact_id=policy.id,
        reward_artifact_id=reward.id,
        config=PPO_CONFIG,
        user=engineer,
    )
    assert run.prompt_ids == sorted(
        Prompt.objects.filter(project=project).values_list("id", flat=True)
    )
    done = execute_policy_run(run.id)
    assert done.status == RunStatus.SUCCEEDED, done.error
    artifact = done.output_artifact
    assert artifact is not None
    assert artifact.kind == "policy" and artifact.parent_id == policy.id
    assert artifact.project_id == project.id
    assert done.metrics["steps"] == 4 and "history" not in done.metrics
    steps = list(RunMetric.objects.filter(run=run).values_list("step", flat=True))
    assert steps == [1, 2, 3, 4]
    client.force_login(engineer)
    url = f"/api/projects/{project.id}/training-runs/{run.id}/metrics/"
    rows = client.get(url, {"after": 2}).json()["results"]
    assert [r["step"] for r in rows] == [3, 4]
    assert {"reward", "kl", "kl_coef", "entropy", "eos_rate"} <= set(rows[0]["values"])
    assert client.get(url, {"after": "x"}).status_code == 400
    # a re-delivered message for the finished run changes nothing
    assert execute_policy_run(run.id).output_artifact_id == artifact.id


def test_ppo_run_cancelled_while_running_registers_nothing(
    make_user: Any, model_files: dict[str, Path]
) -> None:
    from training import run_lifecycle
    from training.policy_runs import create_policy_run, execute_policy_run

    project, engineer = project_with_prompts(make_user)
    run = create_policy_run(
        project=project,
        kind="ppo",
        base_artifact_id=register(model_files["policy"], "policy").id,
        reward_artifact_id=register(model_files["reward"], "reward").id,
        config=PPO_CONFIG | {"total_episodes": 800},
        user=engineer,
    )
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)  # asked mid-run
    original = run_lifecycle.RunCallback.due
    run_lifecycle.RunCallback.due = lambda self: True  # type: ignore[method-assign]
    try:
        done = execute_policy_run(run.id)
    finally:
        run_lifecycle.RunCallback.due = original  # type: ignore[method-assign]
    assert done.status == RunStatus.CANCELLED
    assert done.output_artifact_id is None
    assert RunMetric.objects.filter(run=run).count() < 100  # stopped after the first step
    assert ModelArtifact.objects.filter(kind="policy").count() == 1


def test_a_failing_policy_run_is_marked_failed_with_the_reason(
    make_user: Any, model_files: dict[str, Path]
) -> None:
    from training.policy_runs import create_policy_run, execute_policy_run

    project, engineer = project_with_prompts(make_user)
    run = create_policy_run(
        project=project,
        kind="ppo",
        base_artifact_id=register(model_files["policy"], "policy").id,
        reward_artifact_id=register(model_files["reward"], "reward").id,
        config=PPO_CONFIG | {"learning_rate": 0.5, "kl_hard_stop": 0.01, "max_approx_kl": 0.0},
        user=engineer,
    )
    with pytest.raises(Exception, match="kl_hard_stop"):
        execute_policy_run(run.id)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "KLExplosion" in run.error
    assert ModelArtifact.objects.filter(kind="policy").count() == 1


def test_watchdog_requeues_a_policy_run_on_its_own_task(
    make_user: Any, model_files: dict[str, Path], settings: Any
) -> None:
    from django.utils import timezone

    from training.policy_runs import create_policy_run
    from training.run_lifecycle import task_for

    project, engineer = project_with_prompts(make_user)
    run = create_policy_run(
        project=project,
        kind="rloo",
        base_artifact_id=register(model_files["policy"], "policy").id,
        reward_artifact_id=register(model_files["reward"], "reward").id,
        config={},
        user=engineer,
    )
    assert task_for(run.kind).name == "training.gpu.train_policy"
    assert task_for("generate").name == "training.gpu.generate_candidates"
    assert task_for("reward").name == "training.gpu.train_reward_model"
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING,
        attempts=1,
        heartbeat_at=timezone.now() - timezone.timedelta(hours=1),
    )
    from training.run_lifecycle import reap_stalled_runs

    assert reap_stalled_runs() == {"requeued": [run.pk], "failed": []}


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_ppo_then_generation_on_a_real_gpu_queue_worker(
    make_user: Any, client: Client, model_files: dict[str, Path], settings: Any, tmp_path: Path
) -> None:
    from tests.conftest import start_worker, stop_worker, worker_env

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the suite's broker is not Redis (make test sets it when Redis answers)")
    project, engineer = project_with_prompts(make_user)
    policy = register(model_files["policy"], "policy")
    reward = register(model_files["reward"], "reward", project=project)
    worker = start_worker(
        worker_env(ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT), OMP_NUM_THREADS="1"),
        queues="gpu",
        log=tmp_path / "worker.log",
    )
    client.force_login(engineer)

    def wait(run_id: int) -> dict[str, Any]:
        url = f"/api/projects/{project.id}/training-runs/{run_id}/"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            body = client.get(url).json()
            if body["status"] in ("succeeded", "failed", "cancelled"):
                return body
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} did not finish: {body}")

    try:
        created = post_run(
            client,
            project,
            {
                "kind": "ppo",
                "base_artifact": policy.id,
                "reward_artifact": reward.id,
                "config": PPO_CONFIG,
            },
        )
        assert created.status_code == 201, created.content
        ppo = wait(created.json()["id"])
        assert ppo["status"] == "succeeded", (ppo, (tmp_path / "worker.log").read_text()[-3000:])
        new_policy = ppo["output_artifact_id"]
        created = post_run(
            client,
            project,
            {
                "kind": "generate",
                "base_artifact": new_policy,
                "compare_artifact": policy.id,
                "config": {
                    "pairing": "new_vs_previous",
                    "sampling": {"n": 1, "max_new_tokens": 12},
                    "round_number": 1,
                },
            },
        )
        assert created.status_code == 201, created.content
        generated = wait(created.json()["id"])
    finally:
        stop_worker(worker)
    log = (tmp_path / "worker.log").read_text()
    assert generated["status"] == "succeeded", (generated, log[-3000:])
    assert "training.gpu.train_policy" in log and "training.gpu.generate_candidates" in log
    batch = Batch.objects.get(pk=generated["output_batch_id"])
    assert batch.source == "generation"
    comparisons = list(Comparison.objects.filter(batch=batch))
    assert comparisons and batch.comparison_count == len(comparisons)
    for comparison in comparisons:  # one side from each policy
        sides = {
            Response.objects.get(pk=comparison.response_a_id).model_artifact_id,
            Response.objects.get(pk=comparison.response_b_id).model_artifact_id,
        }
        assert sides == {new_policy, policy.id}
    annotator = make_user("annotator")
    set_membership(project=project, user=annotator, role=Role.ANNOTATOR)
    judged: set[int] = set()
    while (lease := queue.lease_next(project_id=project.id, user=annotator)) is not None:
        judged.add(lease.comparison_id)
        queue.submit_judgment(
            project_id=project.id,
            assignment_id=lease.id,
            user=annotator,
            data=queue.JudgmentInput(choice="left", strength=3),
        )
    assert {c.id for c in comparisons} <= judged  # the new batch went to the annotators
