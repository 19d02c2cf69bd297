"""The closed loop end to end: simulated annotators judge through the HTTP API following the
gold rule, two RLHF rounds run on tiny models through a real Celery worker (default and gpu
queues, over Redis), and round 2's policy beats the starting one by the gold rule; the
lineage from judgments to the model is queryable.

The annotators' noise is keyed by the pair (``noise_scope="item"``), so the labels do not
depend on which annotator thread happened to take which pair: on one machine the test's
outcome is the same run after run. ``PREFLAB_LOOP_SEED`` picks another noise draw (and
annotator seed); ``bench/rlhf_loop_repeat.py`` runs the test many times and prints the
figures it records (``record_property``)."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from scipy.stats import mannwhitneyu

from annotation.importing import ImportOptions, import_comparisons
from annotation.models import Comparison, Judgment
from annotation.roles import Role
from annotation.services import create_project, set_membership
from annotation.simulation import SimulationConfig, simulate
from tests.annotation.factories import jsonl
from training.demo import ROUND_DEFAULTS as LOOP_ROUND_DEFAULTS
from training.ml.policy_eval import sample_with_kl, win_rate
from training.ml.synthetic import (
    PolicyShape,
    build_synthetic_policy,
    gold_score,
    prompt_rows,
    random_answer,
)
from training.models import ModelArtifact
from training.registry import artifact_dir, register_artifact, staging_dir

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

PROMPTS = 640
SEED = int(os.environ.get("PREFLAB_LOOP_SEED", "1"))
# the reward and PPO settings the demo's loop project starts its rounds with
ROUND_CONFIG = {
    "export": {"test_fraction": 0.1},
    "reward": LOOP_ROUND_DEFAULTS["reward"],
    "policy": LOOP_ROUND_DEFAULTS["policy"],
    "generation": {"sampling": {"n": 1, "max_new_tokens": 24}},
}


def wait_for_round(client: Client, url: str, worker_log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 240
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    assert body.get("status") == "succeeded", (body, worker_log.read_text()[-4000:])
    return body


def test_two_rounds_of_human_feedback_improve_the_policy_by_the_gold_rule(
    live_server: Any, make_user: Any, settings: Any, tmp_path: Path, record_property: Any
) -> None:
    from tests.conftest import start_worker, stop_worker, worker_env

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the suite's broker is not Redis (make test sets it when Redis answers)")
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    policy_files = build_synthetic_policy(tmp_path / "start", shape=PolicyShape(pretrain_steps=150))
    staged = staging_dir("start")
    shutil.copytree(policy_files, staged, dirs_exist_ok=True)
    start = register_artifact(source=staged, name="start", kind="policy")

    project = create_project(name="loop", overlap_k=1)
    rng = random.Random(3)
    rows = [
        {
            "id": f"q{i}",
            "prompt": row["prompt"],
            "response_a": random_answer(rng),
            "response_b": random_answer(rng),
        }
        for i, row in enumerate(prompt_rows(PROMPTS, 11))
    ]
    import_comparisons(project=project, stream=jsonl(*rows), options=ImportOptions())
    engineer = make_user("engineer")
    set_membership(project=project, user=engineer, role=Role.ML_ENGINEER)
    annotators = SimulationConfig(annotators=4, noise=0.05, noise_scope="item", seed=SEED)

    first = simulate(base_url=live_server.url, project_id=project.id, config=annotators)
    assert first.total == PROMPTS and not first.errors

    worker = start_worker(
        worker_env(ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT), OMP_NUM_THREADS="1"),
        queues="default,gpu",
        log=tmp_path / "worker.log",
    )
    client = Client()
    client.force_login(engineer)
    rounds_url = f"/api/projects/{project.id}/rounds/"
    try:
        created = client.post(
            rounds_url,
            {"base_policy": start.pk, "config": ROUND_CONFIG},
            content_type="application/json",
        )
        assert created.status_code == 201, created.content
        one = wait_for_round(
            client, f"{rounds_url}{created.json()['id']}/", tmp_path / "worker.log"
        )
        published = Comparison.objects.filter(batch_id=one["batch_id"]).count()
        assert published > 0

        second = simulate(base_url=live_server.url, project_id=project.id, config=annotators)
        assert second.total == published  # the annotators got round 1's new-vs-previous pairs
        one = client.get(f"{rounds_url}{one['id']}/").json()
        assert one["win_rate"]["n"] == published
        assert one["win_rate"]["win_rate"] > 0.5, one["win_rate"]  # humans prefer the new policy

        created = client.post(
            rounds_url,
            {"config": ROUND_CONFIG | {"accumulate": True}},
            content_type="application/json",
        )
        assert created.status_code == 201, created.content
        two = wait_for_round(
            client, f"{rounds_url}{created.json()['id']}/", tmp_path / "worker.log"
        )
    finally:
        stop_worker(worker)
    assert two["number"] == 2 and two["base_policy_id"] == one["policy_artifact_id"]
    assert (
        two["steps"][0]["detail"]["judgments"] == Judgment.objects.filter(project=project).count()
    )

    # round 2's policy against the starting one (round 0), judged by the gold rule
    final = ModelArtifact.objects.get(pk=two["policy_artifact_id"])
    prompts = [r["prompt"] for r in prompt_rows(256, 99)]
    new = sample_with_kl(artifact_dir(final), prompts, reference=policy_files, seed=5)
    old = sample_with_kl(policy_files, prompts, seed=6)
    won = win_rate(new.texts, old.texts, gold_score)
    record_property("seed", SEED)
    record_property("win_rate", round(won, 4))
    record_property("round_1_human_win_rate", one["win_rate"]["win_rate"])
    record_property("gold_new", round(sum(map(gold_score, new.texts)) / len(new.texts), 4))
    record_property("gold_old", round(sum(map(gold_score, old.texts)) / len(old.texts), 4))
    record_property("kl_vs_start", round(sum(new.kl) / len(new.kl), 3))
    record_property("words_new", sum(len(t.split()) for t in new.texts) / len(new.texts))
    record_property("samples", json.dumps(new.texts[:8]))
    for name, body in (("round_1", one), ("round_2", two)):
        details = {step["name"]: step["detail"] for step in body["steps"]}
        summary = {
            "reward_accuracy": details["reward"].get("eval_accuracy"),
            "ppo_kl": details["policy"].get("kl"),
            "ppo_reward": details["policy"].get("reward"),
        }
        record_property(name, json.dumps(summary))
    assert won > 0.6, new.texts[:12]
    assert (
        mannwhitneyu(
            [gold_score(t) for t in new.texts],
            [gold_score(t) for t in old.texts],
            alternative="greater",
        ).pvalue
        < 1e-3
    )

    # lineage: round 2's policy ← its PPO run ← the reward model's export ← every judgment
    lineage = client.get(f"/api/projects/{project.id}/artifacts/{final.pk}/lineage/").json()
    assert [a["id"] for a in lineage["ancestors"]] == [one["policy_artifact_id"], start.pk]
    assert lineage["run"]["kind"] == "ppo"
    assert lineage["dataset_export"]["id"] == two["dataset_export_id"]
    exported = lineage["dataset_export"]["train_rows"] + lineage["dataset_export"]["test_rows"]
    assert lineage["judgments"]["count"] >= exported > 0
    assert lineage["judgments"]["annotators"] == 4
    assert lineage["round"]["number"] == 2
