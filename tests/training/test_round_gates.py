"""Gates before a round publishes: an export with too small a test split, a reward model no
better than chance, a policy too far from its start, degenerate samples — each stops the
round with the gate, the value and the threshold on record, and nothing published; "publish
anyway" lets it go on with the reason recorded."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from annotation.models import Batch
from tests.training.test_rounds import (
    CONFIG,
    base_policy,
    drive,
    judge_all,
    judged_project,
)
from training.ml.generation import Candidate
from training.models import RunStatus
from training.round_gates import (
    SampleHealth,
    parse_gates,
    policy_kl_gate,
    reward_accuracy_gate,
    split_gate,
)
from training.rounds import advance_round, start_round

pytestmark = pytest.mark.django_db

OFF = CONFIG["gates"]


def gates(**on: float) -> dict[str, Any]:
    return CONFIG | {"gates": OFF | on}


def test_sample_health_catches_each_kind_of_degenerate_text() -> None:
    normal = [f"the river {w} runs past the old mill tonight" for w in ("north", "east", "west")]
    health = SampleHealth.measure(normal, normal)
    assert all(r.passed for r in health.results(parse_gates({})))

    short = SampleHealth.measure(["ok", "ok then", "fine"], normal)
    assert short.length_ratio is not None and short.length_ratio < 0.4
    looping = SampleHealth.measure(["go on go on go on go on go on"] * 3, normal)
    same = SampleHealth.measure(["yes yes"] * 20, ["yes yes"] * 20)
    broken = SampleHealth.measure(["a fine \ufffd answer", "fine", "fine too"], normal)
    expected = {
        "length_collapse": short,
        "repetition": looping,
        "distinct_2": same,
        "broken_text": broken,
    }
    defaults = parse_gates({})
    for gate, measured in expected.items():
        stopped = {r.gate for r in measured.results(defaults) if not r.passed}
        assert gate in stopped, (gate, measured)
        # a threshold of 0 turns the gate off
        off = parse_gates({k: 0 for k in OFF})
        assert all(r.passed for r in measured.results(off))


def test_the_round_level_gates_compare_with_their_thresholds() -> None:
    g = parse_gates({"min_test_rows": 10, "min_reward_accuracy": 0.6, "max_policy_kl": 5})
    assert not split_gate(9, g).passed and split_gate(10, g).passed
    assert not reward_accuracy_gate(0.59, g).passed and reward_accuracy_gate(0.6, g).passed
    assert not reward_accuracy_gate(None, g).passed  # no held-out accuracy at all
    assert not policy_kl_gate(5.1, g).passed and policy_kl_gate(4.9, g).passed
    assert policy_kl_gate(None, g).passed  # DPO reports no KL
    assert "below 10" in split_gate(3, g).reason


def test_a_small_test_split_stops_the_round_and_publish_anyway_goes_on(
    make_user: Any,
    policy_files: Path,
    client: Client,
) -> None:
    project, engineer, _ = judged_project(make_user)
    base = base_policy(policy_files)
    r = drive(
        start_round(
            project=project, config=gates(min_test_rows=50), base_policy_id=base.pk, user=engineer
        )
    )
    assert r.status == RunStatus.FAILED and r.step == "export"
    [stopped] = r.steps["export"]["detail"]["gates"]
    assert stopped["gate"] == "test_split" and stopped["threshold"] == 50
    assert stopped["value"] == r.dataset_export.test_rows < 50
    assert "test_split" in r.error and r.reward_run is None and r.batch is None

    client.force_login(engineer)
    url = f"/api/projects/{project.id}/rounds/{r.id}/override/"
    for body in ({}, {"reason": ""}, {"reason": "x" * 2001}, {"reason": ["a"]}):
        answer = client.post(url, body, content_type="application/json")
        assert answer.status_code == 400, (body, answer.content)
    answer = client.post(url, {"reason": "small pilot, checked by hand"}, "application/json")
    assert answer.status_code == 200, answer.content
    export_id = r.dataset_export_id
    r = drive(advance_round(r.pk))
    assert r.status == RunStatus.SUCCEEDED and r.batch is not None
    assert r.dataset_export_id == export_id  # the export made before the gate, not another
    [override] = r.steps["export"]["detail"]["overrides"]
    assert override["gates"] == ["test_split"] and override["by"] == engineer.username
    assert override["reason"] == "small pilot, checked by hand"
    # a round that no gate stopped cannot be overridden
    again = client.post(url, {"reason": "again"}, content_type="application/json")
    assert again.status_code == 409


def test_a_reward_model_at_chance_stops_the_round_before_the_policy(
    make_user: Any,
    policy_files: Path,
) -> None:
    project, engineer, annotator = judged_project(make_user, n=4)
    # more comparisons, judged at random: nothing to learn
    from annotation.importing import ImportOptions, import_comparisons
    from tests.annotation.factories import jsonl
    from training.ml.synthetic import random_answer

    rng = random.Random(5)
    rows = [
        {
            "id": f"n{i}",
            "prompt": "Say something.",
            "response_a": random_answer(rng),
            "response_b": random_answer(rng),
        }
        for i in range(60)
    ]
    import_comparisons(project=project, stream=jsonl(*rows), options=ImportOptions())
    coin = random.Random(7)
    judge_all(project, annotator, prefer=lambda _lease: coin.choice(["left", "right"]))
    base = base_policy(policy_files)
    r = drive(
        start_round(
            project=project,
            config=gates(min_reward_accuracy=0.99, min_test_rows=5),
            base_policy_id=base.pk,
            user=engineer,
        )
    )
    assert r.status == RunStatus.FAILED and r.step == "reward", r.error
    [stopped] = r.steps["reward"]["detail"]["gates"]
    assert stopped["gate"] == "reward_accuracy" and stopped["value"] < 0.99
    assert r.policy_run is None and r.batch is None and r.reward_artifact is not None


def degenerate_sampler(real: Any) -> Any:
    """The real sampler for the previous policy; broken byte fragments for the new one."""

    def sample(policy_dir: Path, prompts: list[Any], config: Any, **kw: Any) -> Any:
        groups = real(policy_dir, prompts, config, **kw)
        if config.seed != 0:  # the previous policy samples with another seed
            return groups
        return [
            [
                Candidate(text=f"\ufffd{i}\ufffd{j}", finished=True, num_tokens=2)
                for j in range(len(group))
            ]
            for i, group in enumerate(groups)
        ]

    return sample


def test_degenerate_samples_stop_the_round_and_publish_nothing_until_overridden(
    make_user: Any,
    policy_files: Path,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import training.generation as generation

    monkeypatch.setattr(
        generation, "generate_candidates", degenerate_sampler(generation.generate_candidates)
    )
    project, engineer, _ = judged_project(make_user)
    base = base_policy(policy_files)
    batches = Batch.objects.filter(project=project).count()
    r = drive(
        start_round(
            project=project,
            config=gates(max_broken_text=0.05),
            base_policy_id=base.pk,
            user=engineer,
        )
    )
    assert r.status == RunStatus.FAILED and r.step == "generate", r.error
    [stopped] = r.steps["generate"]["detail"]["gates"]
    assert stopped["gate"] == "broken_text" and stopped["value"] == 1.0
    assert Batch.objects.filter(project=project).count() == batches  # nothing published
    assert r.generation_run.metrics["samples"]["broken_text"] == 1.0

    client.force_login(engineer)
    url = f"/api/projects/{project.id}/rounds/{r.id}/override/"
    answer = client.post(url, {"reason": "fragments expected"}, "application/json")
    assert answer.status_code == 200, answer.content
    r = drive(advance_round(r.pk))
    assert r.status == RunStatus.SUCCEEDED and r.batch is not None
    assert r.generation_run.config["gates"]["max_broken_text"] == 0  # that gate, off
    assert r.steps["generate"]["detail"]["overridden"] == ["broken_text"]
