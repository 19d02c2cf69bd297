"""RLHF rounds driven in-process (each queued run executed here, in order): the step machine,
the feedback window, resumability, cancel and retry, win rate, lineage, the API's answers to
bad requests and other roles, and the management command."""

from __future__ import annotations

import io
import json
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotation import queue
from annotation.importing import ImportOptions, import_comparisons
from annotation.models import Judgment, Project
from annotation.roles import Role
from annotation.services import create_project, set_membership
from tests.annotation.factories import jsonl
from training.generation_runs import execute_generation_run
from training.ml.ppo import parse_ppo_config
from training.ml.synthetic import gold_score, random_answer
from training.models import (
    ModelArtifact,
    RLHFRound,
    RoundDefaults,
    RunKind,
    RunStatus,
    TrainingRun,
)
from training.policy_runs import execute_policy_run
from training.registry import register_artifact, staging_dir
from training.reward_runs import execute_reward_run
from training.round_config import default_round_config, set_round_defaults
from training.round_selectors import wilson_interval
from training.rounds import advance_round, cancel_round, retry_round, start_round
from training.run_inputs import InvalidRunConfig

pytestmark = pytest.mark.django_db

CONFIG = {
    "reward": {"learning_rate": 0.003, "epochs": 1, "batch_size": 16, "max_length": 64},
    "policy": {"total_episodes": 16, "batch_size": 8, "mini_batch_size": 8, "max_new_tokens": 8},
    "generation": {"sampling": {"n": 1, "max_new_tokens": 8}},
    "export": {"test_fraction": 0.2},
    # the gates have their own tests (test_round_gates.py); these tiny rounds pass them all
    "gates": dict.fromkeys(
        (
            "min_test_rows",
            "min_reward_accuracy",
            "max_policy_kl",
            "min_length_ratio",
            "max_repetition",
            "min_distinct_2",
            "max_broken_text",
        ),
        0,
    ),
}
EXECUTE = {
    RunKind.REWARD: execute_reward_run,
    RunKind.PPO: execute_policy_run,
    RunKind.GENERATE: execute_generation_run,
}


@pytest.fixture(autouse=True)
def _artifacts(settings: Any, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"


def base_policy(files: Path) -> ModelArtifact:
    staged = staging_dir("test")
    shutil.copytree(files, staged, dirs_exist_ok=True)
    return register_artifact(source=staged, name="base", kind="policy")


def judged_project(make_user: Any, n: int = 24) -> tuple[Project, Any, Any]:
    """Comparisons of random answers, judged by the gold rule; an ML engineer."""
    project = create_project(name="loop", overlap_k=1)
    rng = random.Random(1)
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
    annotator = make_user("judge")
    set_membership(project=project, user=annotator, role=Role.ANNOTATOR)
    judge_all(project, annotator)
    engineer = make_user("engineer")
    set_membership(project=project, user=engineer, role=Role.ML_ENGINEER)
    return project, engineer, annotator


def judge_all(project: Project, annotator: Any, prefer: Any = None) -> int:
    """Judge everything the queue offers by the gold rule (or by ``prefer(lease)``)."""
    count = 0
    while (lease := queue.lease_next(project_id=project.id, user=annotator)) is not None:
        left, right = lease.content_a, lease.content_b  # as displayed
        if prefer is not None:
            choice = prefer(lease)
        else:
            choice = "left" if gold_score(left) >= gold_score(right) else "right"
        queue.submit_judgment(
            project_id=project.id,
            assignment_id=lease.id,
            user=annotator,
            data=queue.JudgmentInput(choice=choice, strength=3),
        )
        count += 1
    return count


def drive(r: RLHFRound) -> RLHFRound:
    """Advance the round, executing each run it queues here, until it finishes."""
    for _ in range(20):
        r = advance_round(r.pk)
        if r.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
            return r
        run = r.generation_run or r.policy_run or r.reward_run
        assert run is not None and run.status == RunStatus.QUEUED, (r.step, run)
        try:
            EXECUTE[RunKind(run.kind)](run.pk)
        except Exception:  # noqa: S110 - as on a worker: the run is marked failed with the
            pass  # error, and the next advance fails the round with it (asserted by callers)
    raise AssertionError(f"round {r.number} did not finish: {r.step}")


def test_a_round_runs_every_step_and_publishes_new_vs_previous_pairs(
    make_user: Any, policy_files: Path, client: Client
) -> None:
    project, engineer, annotator = judged_project(make_user)
    base = base_policy(policy_files)
    r = drive(start_round(project=project, config=CONFIG, base_policy_id=base.pk, user=engineer))
    assert r.status == RunStatus.SUCCEEDED, r.error
    assert r.step == "published"
    assert [
        r.steps[s]["status"] for s in ("collect", "export", "reward", "policy", "generate")
    ] == ["done"] * 5
    assert r.steps["collect"]["detail"]["judgments"] == 24
    assert r.judged_after is None  # the first round takes all feedback so far
    assert (
        r.reward_artifact is not None and r.reward_artifact.dataset_export_id == r.dataset_export_id
    )
    assert r.policy_artifact is not None and r.policy_artifact.parent_id == base.pk
    assert r.batch is not None and r.batch.comparison_count > 0
    sides = r.batch.metadata["response_sides"]
    assert sides["new"] and sides["previous"]
    # annotators who always prefer the new policy: win rate 1, with its interval
    new = set(sides["new"])

    def prefer_new(lease: queue.Lease) -> str:
        from annotation.models import Comparison

        c = Comparison.objects.get(pk=lease.comparison_id)
        a_is_new = c.response_a_id in new
        left_is_a = not lease.swapped
        return "left" if a_is_new == left_is_a else "right"

    judged = judge_all(project, annotator, prefer=prefer_new)
    assert judged == r.batch.comparison_count
    client.force_login(engineer)
    body = client.get(f"/api/projects/{project.id}/rounds/{r.pk}/").json()
    assert body["win_rate"]["n"] == judged and body["win_rate"]["win_rate"] == 1.0
    assert body["win_rate"]["ci_low"] == pytest.approx(wilson_interval(judged, judged)[0], abs=1e-4)
    assert body["win_rate"]["predicted"] is not None  # the reward model's prediction
    assert [s["name"] for s in body["steps"]] == [
        "collect",
        "export",
        "reward",
        "policy",
        "generate",
        "published",
    ]
    # lineage: the policy ← PPO run ← reward model's export ← the 24 judgments
    lineage = client.get(
        f"/api/projects/{project.id}/artifacts/{r.policy_artifact_id}/lineage/"
    ).json()
    assert lineage["run"]["kind"] == "ppo"
    assert [a["id"] for a in lineage["ancestors"]] == [base.pk]
    assert lineage["dataset_export"]["id"] == r.dataset_export_id
    assert lineage["judgments"]["count"] == 24 and lineage["judgments"]["annotators"] == 1
    assert lineage["round"] == {"id": r.pk, "number": 1}

    with CaptureQueriesContext(connection) as one_round:
        assert len(client.get(f"/api/projects/{project.id}/rounds/").json()["results"]) == 1

    # round 2 starts from round 1's policy and sees only the feedback since round 1
    r2 = drive(start_round(project=project, config=CONFIG, user=engineer))
    assert r2.status == RunStatus.SUCCEEDED, r2.error
    assert r2.number == 2 and r2.base_policy_id == r.policy_artifact_id
    assert r2.judged_after == r.judged_before
    assert r2.steps["collect"]["detail"]["judgments"] == judged
    assert r2.steps["collect"]["detail"]["since_round"] == 1
    assert r2.reward_base_id == base.pk  # reward models start from the same base each round
    lineage = client.get(
        f"/api/projects/{project.id}/artifacts/{r2.policy_artifact_id}/lineage/"
    ).json()
    assert [a["id"] for a in lineage["ancestors"]] == [r.policy_artifact_id, base.pk]
    assert lineage["judgments"]["count"] == judged
    # the rounds list reads every round's win rate in one query: two published rounds cost
    # what one did
    judge_all(project, annotator)
    with CaptureQueriesContext(connection) as two_rounds:
        listed = client.get(f"/api/projects/{project.id}/rounds/").json()["results"]
    assert [row["number"] for row in listed] == [2, 1]
    assert all(row["win_rate"] is not None for row in listed)
    assert len(two_rounds.captured_queries) == len(one_round.captured_queries)


def test_accumulate_takes_all_feedback_and_min_judgments_fails_then_retries(
    make_user: Any, policy_files: Path
) -> None:
    project, engineer, annotator = judged_project(make_user, n=12)
    base = base_policy(policy_files)
    first = drive(
        start_round(project=project, config=CONFIG, base_policy_id=base.pk, user=engineer)
    )
    assert first.status == RunStatus.SUCCEEDED, first.error
    # nothing judged since round 1: a round that needs feedback fails at collect, clearly
    starved = drive(
        start_round(project=project, config=CONFIG | {"min_judgments": 5}, user=engineer)
    )
    assert starved.status == RunStatus.FAILED and starved.step == "collect"
    assert "0 judgment(s) since round 1" in starved.error
    assert starved.steps["collect"]["status"] == "failed"
    judge_all(project, annotator)
    retried = drive(retry_round(r=starved))
    assert retried.status == RunStatus.SUCCEEDED, retried.error
    assert retried.steps["collect"]["detail"]["attempts"] == 2
    accumulated = drive(
        start_round(project=project, config=CONFIG | {"accumulate": True}, user=engineer)
    )
    # trained on everything; whether 16 more episodes change any of 12 eight-token samples
    # is up to chance, and a generation that finds only pairs already asked publishes
    # nothing and says so
    assert accumulated.steps["policy"]["status"] == "done", accumulated.error
    assert accumulated.status == RunStatus.SUCCEEDED or (
        accumulated.step == "generate" and "already in another batch" in accumulated.error
    ), accumulated.error
    assert accumulated.judged_after is None
    assert (
        accumulated.steps["collect"]["detail"]["judgments"]
        == Judgment.objects.filter(project=project).count()
    )


def test_advancing_twice_never_starts_a_step_twice_and_cancel_stops_the_run(
    make_user: Any, policy_files: Path
) -> None:
    project, engineer, _ = judged_project(make_user, n=12)
    r = start_round(
        project=project, config=CONFIG, base_policy_id=base_policy(policy_files).pk, user=engineer
    )
    r = advance_round(r.pk)
    assert r.step == "reward" and r.reward_run is not None
    # a re-delivered task or the beat finds the run queued and waits: no second run
    for _ in range(3):
        assert advance_round(r.pk).reward_run_id == r.reward_run_id
    assert TrainingRun.objects.filter(kind="reward").count() == 1
    cancelled = cancel_round(r=r)
    assert cancelled.status == RunStatus.CANCELLED
    assert cancelled.steps["reward"]["status"] == "cancelled"
    run = TrainingRun.objects.get(pk=r.reward_run_id)
    assert run.status == RunStatus.CANCELLED  # it was queued: cancelled at once
    assert advance_round(r.pk).status == RunStatus.CANCELLED
    from preflab.errors import ConflictError

    with pytest.raises(ConflictError):
        cancel_round(r=cancelled)
    with pytest.raises(ConflictError):
        retry_round(r=cancelled)


def test_a_failed_run_fails_the_round_with_its_reason_and_retry_starts_a_new_run(
    make_user: Any, policy_files: Path
) -> None:
    project, engineer, _ = judged_project(make_user, n=12)
    config = CONFIG | {
        "policy": CONFIG["policy"]
        | {"learning_rate": 0.5, "kl_hard_stop": 0.01, "max_approx_kl": 0.0}
        | {"value_warmup_steps": 0}  # the first step moves the policy, the second explodes
    }
    r = start_round(
        project=project, config=config, base_policy_id=base_policy(policy_files).pk, user=engineer
    )
    r = drive(r)  # the run fails at its hard stop; the next advance fails the round with it
    assert r.status == RunStatus.FAILED and r.step == "policy"
    assert "KLExplosion" in r.error and "kl_hard_stop" in r.error
    failed_run = r.policy_run_id
    # what an operator fixes before a retry: a sane learning rate and hard stop
    r.config["policy"] = asdict(parse_ppo_config(CONFIG["policy"]))
    r.save(update_fields=["config"])
    retried = drive(retry_round(r=r))
    assert retried.status == RunStatus.SUCCEEDED, retried.error
    assert retried.policy_run_id != failed_run


def test_round_requests_are_validated_and_one_round_runs_at_a_time(
    make_user: Any, policy_files: Path, client: Client
) -> None:
    project, engineer, _ = judged_project(make_user, n=6)
    client.force_login(engineer)
    url = f"/api/projects/{project.id}/rounds/"
    # with no policy at all, the first round has nothing to start from
    assert client.get(url + "defaults/").json()["base_policy"] is None
    nothing = client.post(url, {"config": {}}, content_type="application/json")
    assert nothing.status_code == 400 and "base_policy" in json.dumps(nothing.json())
    base = base_policy(policy_files)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"base_policy": base.pk, "config": {"algorithm": "sft"}}, "algorithm"),
        ({"base_policy": base.pk, "config": {"colour": 1}}, "colour"),
        ({"base_policy": base.pk, "config": {"export": {"judged_after": "2026-01-01"}}}, "export"),
        ({"base_policy": base.pk, "config": {"policy": {"cliprange": 4}}}, "cliprange"),
        ({"base_policy": base.pk, "config": {"generation": {"sampling": {"n": 0}}}}, "n"),
        ({"base_policy": base.pk, "config": {"prompt_ids": [999999]}}, "prompt_ids"),
    ]
    for body, field in cases:
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert field in json.dumps(response.json()), (body, response.json())
    assert RLHFRound.objects.count() == 0
    defaults = client.get(url + "defaults/").json()
    # the first round's default is the newest policy the project can use, and it is valid
    assert defaults["config"]["algorithm"] == "ppo" and defaults["base_policy"] == base.pk
    created = client.post(
        url, {"base_policy": defaults["base_policy"], "config": CONFIG}, "application/json"
    )
    assert created.status_code == 201, created.content
    again = client.post(url, {"base_policy": base.pk}, content_type="application/json")
    assert again.status_code == 409
    assert client.get(url).json()["results"][0]["number"] == 1


def test_a_projects_round_defaults_fill_the_form_and_start_the_first_round(
    make_user: Any, policy_files: Path, client: Client
) -> None:
    project, engineer, _ = judged_project(make_user, n=6)
    other = create_project(name="other")
    base = base_policy(policy_files)
    with pytest.raises(InvalidRunConfig, match="cliprange"):
        set_round_defaults(project=project, config={"policy": {"cliprange": 4}})
    with pytest.raises(InvalidRunConfig, match="colour"):
        set_round_defaults(project=project, config={"colour": 1})
    foreign = register_artifact(
        source=_copy(policy_files), name="theirs", kind="policy", project=other
    )
    with pytest.raises(InvalidRunConfig, match="base_policy"):
        set_round_defaults(project=project, config={}, base_policy_id=foreign.pk)
    assert not RoundDefaults.objects.exists()

    set_round_defaults(
        project=project,
        base_policy_id=base.pk,
        config={
            "reward": CONFIG["reward"],
            "generation": {"sampling": {"max_new_tokens": 8}},
            "gates": CONFIG["gates"],  # six comparisons: a test split of a row or two
        },
    )
    client.force_login(engineer)
    url = f"/api/projects/{project.id}/rounds/"
    defaults = client.get(url + "defaults/").json()
    assert defaults["base_policy"] == base.pk
    assert defaults["config"]["reward"] == CONFIG["reward"]
    # laid over the built-in defaults key by key
    assert defaults["config"]["generation"] == {
        "sampling": {"n": 1, "max_new_tokens": 8},
        "pairs_per_prompt": 1,
    }
    assert defaults["config"]["export"] == {"test_fraction": 0.1}
    # another project keeps the built-in ones
    assert default_round_config(other) == default_round_config()

    # a round without a base policy or a reward section starts from the project's
    created = client.post(
        url, {"config": {"policy": CONFIG["policy"]}}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    r = RLHFRound.objects.get(pk=created.json()["id"])
    reward: Any = CONFIG["reward"]
    policy: Any = CONFIG["policy"]
    assert r.base_policy_id == base.pk
    assert r.config["reward"]["learning_rate"] == reward["learning_rate"]
    assert r.config["reward"]["epochs"] == reward["epochs"]
    assert r.config["generation"]["sampling"]["max_new_tokens"] == 8
    assert r.config["policy"]["total_episodes"] == policy["total_episodes"]
    r = drive(r)
    assert r.status == RunStatus.SUCCEEDED, r.error
    # later rounds start from the last published policy, not the project's first one
    assert client.get(url + "defaults/").json()["base_policy"] == r.policy_artifact_id


def test_the_admin_form_checks_round_defaults_as_a_round(
    make_user: Any, policy_files: Path
) -> None:
    from training.admin import RoundDefaultsForm

    project = create_project(name="admin-defaults")
    base = base_policy(policy_files)
    bad = RoundDefaultsForm(
        data={"project": project.pk, "config": json.dumps({"reward": {"epochs": -1}})}
    )
    assert not bad.is_valid() and "epochs" in str(bad.errors)
    good = RoundDefaultsForm(
        data={
            "project": project.pk,
            "base_policy": base.pk,
            "config": json.dumps({"reward": {"epochs": 2}}),
        }
    )
    assert good.is_valid(), good.errors
    good.save()
    assert default_round_config(project)["reward"] == {"epochs": 2}


def _copy(files: Path) -> Path:
    staged = staging_dir("test")
    shutil.copytree(files, staged, dirs_exist_ok=True)
    return staged


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.PROJECT_ADMIN])
def test_other_roles_cannot_see_or_start_rounds(
    make_user: Any, policy_files: Path, client: Client, role: str
) -> None:
    project, engineer, _ = judged_project(make_user, n=6)
    base = base_policy(policy_files)
    r = start_round(project=project, config=CONFIG, base_policy_id=base.pk, user=engineer)
    user = make_user("someone")
    set_membership(project=project, user=user, role=role)
    client.force_login(user)
    root = f"/api/projects/{project.id}"
    assert client.get(f"{root}/rounds/").status_code == 403
    assert client.get(f"{root}/rounds/{r.pk}/").status_code == 403
    assert client.post(f"{root}/rounds/", {}, content_type="application/json").status_code == 403
    assert client.post(f"{root}/rounds/{r.pk}/cancel/").status_code == 403
    assert client.get(f"{root}/artifacts/{base.pk}/lineage/").status_code == 403


def test_another_projects_round_and_model_are_not_reachable(
    make_user: Any, policy_files: Path, client: Client
) -> None:
    project, engineer, _ = judged_project(make_user, n=6)
    own = create_project(name="own")
    other_engineer = make_user("other-engineer")
    set_membership(project=own, user=other_engineer, role=Role.ML_ENGINEER)
    r = start_round(
        project=project, config=CONFIG, base_policy_id=base_policy(policy_files).pk, user=engineer
    )
    private = register_artifact(
        source=shutil.copytree(policy_files, staging_dir("p"), dirs_exist_ok=True),
        name="private",
        kind="policy",
        project=project,
    )
    client.force_login(other_engineer)
    assert client.get(f"/api/projects/{own.id}/rounds/{r.pk}/").status_code == 404
    assert client.get(f"/api/projects/{own.id}/artifacts/{private.pk}/lineage/").status_code == 404


def test_management_command_starts_reports_and_cancels(make_user: Any, policy_files: Path) -> None:
    project, engineer, _ = judged_project(make_user, n=6)
    base = base_policy(policy_files)
    out = io.StringIO()
    call_command(
        "rlhf_round",
        "start",
        str(project.id),
        "--user",
        engineer.username,
        "--base-policy",
        str(base.pk),
        "--config",
        json.dumps(CONFIG),
        stdout=out,
    )
    started = json.loads(out.getvalue())[0]
    assert started["number"] == 1 and started["status"] == "queued"
    out = io.StringIO()
    call_command("rlhf_round", "status", str(project.id), stdout=out)
    assert [row["number"] for row in json.loads(out.getvalue())] == [1]
    out = io.StringIO()
    call_command("rlhf_round", "cancel", str(project.id), "--round", "1", stdout=out)
    assert json.loads(out.getvalue())[0]["status"] == "cancelled"
    with pytest.raises(CommandError, match="no round 7"):
        call_command("rlhf_round", "cancel", str(project.id), "--round", "7")
    with pytest.raises(CommandError, match="not JSON"):
        call_command(
            "rlhf_round", "start", str(project.id), "--user", engineer.username, "--config", "{"
        )
    with pytest.raises(CommandError, match="--user"):
        call_command("rlhf_round", "start", str(project.id))
