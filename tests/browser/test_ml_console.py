"""The ML console in Chromium: an ML engineer starts an RLHF round from the form and watches
its steps advance to published (a real Celery worker runs them); annotators are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_annotate import log_in
from tests.training.test_rounds import CONFIG, judged_project
from training.ml.synthetic import PolicyShape, build_synthetic_policy
from training.registry import register_artifact, staging_dir

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

TINY = {
    "reward": {"learning_rate": 0.003, "epochs": 1, "batch_size": 16, "max_length": 64},
    "policy": {"total_episodes": 16, "batch_size": 8, "mini_batch_size": 8, "max_new_tokens": 8},
    "generation": {"sampling": {"n": 1, "max_new_tokens": 8}, "pairs_per_prompt": 1},
    # 12 comparisons leave a test split of 1–2 rows, and a policy pre-trained for 20 steps
    # samples byte fragments: the gates (tested in test_round_gates.py) are off here
    "gates": CONFIG["gates"],
}


def test_an_engineer_starts_a_round_and_sees_its_steps_advance(
    live_server: Any, page: Any, make_user: Any, settings: Any, tmp_path: Path
) -> None:
    from tests.conftest import start_worker, stop_worker, worker_env

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the suite's broker is not Redis (make test sets it when Redis answers)")
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    project, engineer, _ = judged_project(make_user, n=12)
    files = build_synthetic_policy(
        tmp_path / "policy", shape=PolicyShape(hidden=32, layers=1, heads=2, pretrain_steps=20)
    )
    staged = staging_dir("start")
    shutil.copytree(files, staged, dirs_exist_ok=True)
    base = register_artifact(source=staged, name="start-policy", kind="policy")
    worker = start_worker(
        worker_env(ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT), OMP_NUM_THREADS="1"),
        queues="default,gpu",
        log=tmp_path / "worker.log",
    )
    try:
        log_in(page, live_server.url, engineer.username, f"/projects/{project.id}")
        page.get_by_role("link", name="ML console").click()
        page.wait_for_url(f"**/projects/{project.id}/ml**")
        page.get_by_role("button", name="Start a round").click()
        form = page.get_by_test_id("start-round-form")
        form.get_by_label("Base policy").select_option(str(base.pk))
        form.get_by_text("Advanced").click()
        for section, label in (
            ("reward", "Reward config (JSON)"),
            ("policy", "Policy config (JSON)"),
            ("generation", "Generation config (JSON)"),
            ("gates", "Gates before publishing (JSON; 0 turns a gate off)"),
        ):
            form.get_by_label(label).fill(json.dumps(TINY[section]))
        form.get_by_role("button", name="Start", exact=True).click()
        page.get_by_role("list", name="Steps of round 1").wait_for()
        steps = page.get_by_test_id("round-steps")
        assert steps.get_by_test_id("round-step-collect").is_visible()
        # the worker advances it; the page polls and shows each step done, then published
        for name in ("collect", "export", "reward", "policy", "generate", "published"):
            page.wait_for_selector(
                f'[data-testid="round-step-{name}"][data-status="done"]', timeout=150_000
            )
        assert page.get_by_test_id("round-step-status-published").inner_text().strip() != ""
        page.screenshot(path=str(settings.VAR_DIR / "ml-console.png"), full_page=True)
    finally:
        stop_worker(worker)
    log = (tmp_path / "worker.log").read_text()
    assert "training.advance_round" in log and "training.gpu.train_policy" in log


def test_the_console_is_refused_to_an_annotator(
    live_server: Any, page: Any, make_user: Any, settings: Any
) -> None:
    project, _, annotator = judged_project(make_user, n=2)
    log_in(page, live_server.url, annotator.username, f"/projects/{project.id}/ml")
    alert = page.get_by_role("alert").first
    alert.wait_for()
    assert "ML engineer of this project" in alert.inner_text()
    assert not page.get_by_role("button", name="Start a round").is_visible()
