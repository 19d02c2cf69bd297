"""Training steps launched outside the worker's process (training.launch): the subprocess and
accelerate launchers with real processes — ``accelerate launch`` over two CPU processes
(gloo) through a real gpu-queue worker, metrics streamed into the run, one artifact, ranks
that agree on their final weights, cancel, a killed worker resumed under the same launcher, a
crashing step — and the validation of a run's launcher settings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from annotation.export import create_export
from annotation.export_options import parse_export_options
from annotation.models import DatasetExport, Project
from tests.conftest import start_worker, stop_worker, wait_for, worker_env
from tests.training.test_policy_runs import model_files, project_with_prompts, register
from tests.training.test_runs import synthetic_project, tiny_base
from training.launch.accelerate_launcher import CONFIGS, accelerate_launcher
from training.launch.base import StepSpec, child_command, get_launcher, launcher_names
from training.launch.child import process_alive, state_checksum
from training.launch.process_group import ProcessGroup, child_env, group_alive
from training.models import ModelArtifact, RunMetric, RunStatus, TrainingRun
from training.registry import artifact_dir
from training.run_inputs import InvalidRunConfig
from training.run_lifecycle import run_checkpoint_dir, run_work_dir
from training.step_supervisor import MetricsTail

__all__ = ["model_files"]  # the module-scoped fixture, shared with test_policy_runs

pytestmark = pytest.mark.django_db

TWO_CPU_PROCESSES = {"num_processes": 2, "checksum_weights": True}
REWARD = {"learning_rate": 0.003, "batch_size": 8, "max_length": 128, "logging_steps": 1}
TERMINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


@pytest.fixture(autouse=True)
def _artifacts(settings: Any, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"


@pytest.fixture
def gpu_worker(settings: Any, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker on the gpu queue (over Redis), sharing the test's artifact root."""
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the suite's broker is not Redis (make test sets it when Redis answers)")
    proc = start_worker(launch_worker_env(settings), queues="gpu", log=tmp_path / "worker.log")
    try:
        yield proc
    finally:
        stop_worker(proc)


def launch_worker_env(settings: Any) -> dict[str, str]:
    return worker_env(
        ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT),
        OMP_NUM_THREADS="1",
        PREFLAB_LAUNCH_TERMINATE_GRACE="20",
    )


def exported(make_user: Any, n: int = 48) -> tuple[Project, Any, DatasetExport]:
    project, engineer = synthetic_project(make_user, n=n)
    export = create_export(
        project=project, options=parse_export_options({"test_fraction": 0.25}), user=engineer
    )
    return project, engineer, export


def finished(run: TrainingRun, timeout: float = 240) -> TrainingRun:
    def done() -> bool:
        run.refresh_from_db()
        return run.status in TERMINAL

    wait_for(f"run {run.pk} to finish", done, timeout=timeout, interval=0.3)
    return run


def attempt_ranks(run: TrainingRun, attempt: int) -> list[dict[str, Any]]:
    """What each process of the attempt's step recorded (pid, final weights' checksum)."""
    folder = run_work_dir(run) / f"attempt-{attempt}"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("rank-*.json"))]


def launched_pid(run: TrainingRun) -> int:
    """The launched step's process (group leader), as the run's log records it."""
    match = re.search(r"launched pid (\d+)", run.log_tail)
    assert match, run.log_tail
    return int(match.group(1))


def step_log(run: TrainingRun, attempt: int = 1) -> str:
    path = run_work_dir(run) / f"attempt-{attempt}" / "step.log"
    return path.read_text(errors="replace") if path.exists() else "(no step log)"


def assert_ranks_agree(run: TrainingRun, artifact: ModelArtifact, processes: int) -> None:
    ranks = attempt_ranks(run, run.attempts)
    assert len(ranks) == processes, ranks
    checksums = {r.get("weights_sha256") for r in ranks}
    assert len(checksums) == 1 and None not in checksums, ranks
    assert len({r["pid"] for r in ranks}) == processes  # really separate processes
    # and the registered model is those weights
    assert registered_checksum(artifact) == checksums.pop()


def registered_checksum(artifact: ModelArtifact) -> str:
    """:func:`state_checksum` of the registered model, loaded as its kind is trained."""
    import transformers

    cls = (
        transformers.AutoModelForSequenceClassification
        if artifact.kind == "reward"
        else transformers.AutoModelForCausalLM
    )
    return state_checksum(cls.from_pretrained(artifact_dir(artifact)))


# --- launcher settings: validated when the run is created ---------------------------------


def test_launchers_are_registered_by_name() -> None:
    assert {"inprocess", "subprocess", "accelerate"} <= set(launcher_names())
    with pytest.raises(ValueError, match="unknown launcher 'slurm'"):
        get_launcher("slurm")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"config": "zero4"}, "config must be one of ddp, zero2, zero3, fsdp"),
        ({"num_processes": 0}, "num_processes must be an integer"),
        ({"num_processes": "2"}, "num_processes must be an integer"),
        ({"num_machines": 2}, "main_process_ip and main_process_port"),
        ({"num_machines": 2, "machine_rank": 2}, "machine_rank must be below"),
        ({"main_process_port": 70000}, "main_process_port must be an integer in 1 … 65535"),
        ({"num_processes": 10**30}, "num_processes must be an integer in 1 … 65535"),
        ({"gpus": 2}, "unknown accelerate launcher option"),
        ({"checksum_weights": "yes"}, "checksum_weights must be true or false"),
    ],
)
def test_bad_accelerate_options_are_refused_with_the_reason(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        accelerate_launcher(options)


def test_a_shipped_config_is_resolved_with_the_launch_numbers(tmp_path: Path) -> None:
    launcher = accelerate_launcher(
        {
            "config": "zero3",
            "num_processes": 16,
            "num_machines": 2,
            "machine_rank": 1,
            "main_process_ip": "10.0.0.1",
            "main_process_port": 29600,
        }
    )
    config = launcher.resolved_config(16, cuda=True)
    assert config["distributed_type"] == "DEEPSPEED"
    assert (config["num_processes"], config["num_machines"], config["machine_rank"]) == (16, 2, 1)
    assert (config["main_process_ip"], config["main_process_port"]) == ("10.0.0.1", 29600)
    ds = Path(config["deepspeed_config"]["deepspeed_config_file"])
    assert (
        ds == CONFIGS / "ds_zero3.json"
        and json.loads(ds.read_text())["zero_optimization"]["stage"] == 3
    )
    for name in ("zero2", "fsdp"):
        with pytest.raises(ValueError, match="needs CUDA"):
            accelerate_launcher({"config": name}).resolved_config(2, cuda=False)
    single = accelerate_launcher({"num_processes": 1}).resolved_config(1, cuda=False)
    assert single["distributed_type"] == "NO"


def test_the_worker_devices_pin_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    assert child_env({"PREFLAB_WORKER_DEVICES": "2,3"})["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert child_env({"CUDA_VISIBLE_DEVICES": "1"})["CUDA_VISIBLE_DEVICES"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in child_env({})
    assert str(Path(__file__).resolve().parents[2]) in child_env({})["PYTHONPATH"]


def test_run_requests_with_a_bad_launcher_are_a_400_naming_it(
    make_user: Any, client: Client, settings: Any
) -> None:
    project, engineer, export = exported(make_user, n=8)
    base = tiny_base()
    client.force_login(engineer)
    url = f"/api/projects/{project.id}/training-runs/"
    body = {"dataset_export": export.id, "base_artifact": base.id, "config": REWARD}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"launcher": "slurm"}, "launcher must be one of inprocess, accelerate, openrlhf, ray"),
        (
            {"launcher": "openrlhf", "launcher_options": {"address": "http://127.0.0.1:8265"}},
            "The openrlhf launcher runs ppo steps only, not reward.",
        ),
        ({"launcher": "accelerate", "launcher_options": [2]}, "must be a JSON object"),
        ({"launcher": "accelerate", "launcher_options": {"config": "zero9"}}, "config must be"),
        ({"launcher": "inprocess", "launcher_options": {"num_processes": 2}}, "takes no options"),
        ({"launcher": 7}, "launcher must be one of"),
    ]
    for extra, message in cases:
        answer = client.post(url, body | extra, content_type="application/json")
        assert answer.status_code == 400, (extra, answer.content)
        assert message in answer.json()["message"], (extra, answer.json())
    generate = {"kind": "generate", "base_artifact": base.id, "launcher": "accelerate"}
    answer = client.post(url, generate, content_type="application/json")
    assert answer.status_code == 400 and "takes no launcher" in answer.json()["message"]
    assert not TrainingRun.objects.exists()

    settings.PREFLAB_DEFAULT_LAUNCHER = "subprocess"
    created = client.post(url, body, content_type="application/json")
    assert created.status_code == 201, created.content
    assert (created.json()["launcher"], created.json()["launcher_options"]) == ("subprocess", {})
    options = {"num_processes": 2, "config": "ddp"}
    created = client.post(
        url,
        body | {"launcher": "accelerate", "launcher_options": options},
        content_type="application/json",
    )
    detail = client.get(f"{url}{created.json()['id']}/").json()
    assert (detail["launcher"], detail["launcher_options"]) == ("accelerate", options)


def test_a_rounds_reward_and_policy_steps_take_a_launcher(make_user: Any) -> None:
    from training.round_config import parse_round_config, step_run_settings

    project, _ = project_with_prompts(make_user)
    options = {"num_processes": 2}
    config = parse_round_config(
        project,
        {
            "algorithm": "dpo",
            "reward": {"launcher": "accelerate", "launcher_options": options, "max_steps": 3},
            "policy": {"launcher": "subprocess"},
        },
    )
    reward = step_run_settings(config["reward"])
    assert (reward["launcher"], reward["launcher_options"]) == ("accelerate", options)
    assert reward["config"]["max_steps"] == 3 and "launcher" not in reward["config"]
    assert step_run_settings(config["policy"])["launcher"] == "subprocess"
    assert "launcher" not in step_run_settings(parse_round_config(project, {})["reward"])
    with pytest.raises(InvalidRunConfig, match="policy: launcher must be one of"):
        parse_round_config(project, {"policy": {"launcher": "nope"}})
    with pytest.raises(InvalidRunConfig, match="reward: launcher_options: unknown"):
        parse_round_config(
            project, {"reward": {"launcher": "subprocess", "launcher_options": {"x": 1}}}
        )


# --- the process group ----------------------------------------------------------------------

STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def test_terminate_kills_a_group_that_ignores_sigterm_and_waits_for_it(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    group = ProcessGroup.start(
        [sys.executable, "-c", STUBBORN], env=dict(os.environ), log_file=log, cwd=None
    )

    def printed_pid() -> str | None:
        last = log.read_text().split()[-1:]
        return last[0] if last and last[0].isdigit() else None

    grandchild = int(wait_for("the grandchild's pid", printed_pid, timeout=10))
    assert group.poll() is None and process_alive(grandchild)
    started = time.monotonic()
    group.terminate(grace_seconds=1.0)
    assert 1.0 <= time.monotonic() - started < 15
    assert not group_alive(group.pgid) and not process_alive(grandchild)
    assert group.poll() == -signal.SIGKILL


def test_the_metrics_tail_waits_for_a_lines_end(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.read() == []  # not written yet
    path.write_text('{"step": 1, "total": 2, "values": {"loss": 1.0}}\n{"step": 2, "tot')
    assert [e["step"] for e in tail.read()] == [1]
    with path.open("a") as handle:
        handle.write('al": 2, "values": {}}\nnot json\n{"event": "done", "metrics": {}}\n')
    assert [e.get("step", e.get("event")) for e in tail.read()] == [2, "done"]
    assert tail.read() == []


def test_a_child_with_a_bad_config_exits_non_zero_without_a_done_line(tmp_path: Path) -> None:
    spec = StepSpec(
        kind="dpo",
        config={"beta": "strong"},
        base=str(tmp_path / "policy"),
        out=str(tmp_path / "out"),
        checkpoint_dir=str(tmp_path / "checkpoints"),
        metrics_file=str(tmp_path / "metrics.jsonl"),
        log_file=str(tmp_path / "step.log"),
        train_file=str(tmp_path / "train.jsonl"),
    ).write(tmp_path / "spec.json")
    result = subprocess.run(
        child_command(spec), env=child_env(os.environ), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "ConfigError: beta:" in result.stderr
    assert (
        not (tmp_path / "metrics.jsonl").exists()
        or "done" not in (tmp_path / "metrics.jsonl").read_text()
    )


# --- real steps through a real worker ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_reward_run_trains_under_accelerate_on_two_cpu_processes(
    make_user: Any, client: Client, gpu_worker: Any, tmp_path: Path
) -> None:
    project, engineer, export = exported(make_user)
    base = tiny_base()
    client.force_login(engineer)
    created = client.post(
        f"/api/projects/{project.id}/training-runs/",
        {
            "dataset_export": export.id,
            "base_artifact": base.id,
            "config": REWARD | {"max_steps": 6, "checkpoint_steps": 3},
            "launcher": "accelerate",
            "launcher_options": TWO_CPU_PROCESSES,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    run = finished(TrainingRun.objects.get(pk=created.json()["id"]))
    assert run.status == RunStatus.SUCCEEDED, (run.error, step_log(run)[-3000:])
    steps = list(RunMetric.objects.filter(run=run).values_list("step", flat=True))
    assert set(range(1, 7)) <= set(steps), steps
    assert "loss" in RunMetric.objects.filter(run=run, step=1).values_list("values", flat=True)[0]
    artifact = ModelArtifact.objects.get(kind="reward")  # exactly one
    assert run.output_artifact_id == artifact.id and artifact.parent_id == base.id
    assert run.metrics["steps"] == 6 and "eval" in run.metrics
    assert_ranks_agree(run, artifact, processes=2)
    assert "accelerate.commands.launch" in step_log(run)
    assert not process_alive(launched_pid(run))


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_dpo_run_trains_under_accelerate_on_two_cpu_processes(
    make_user: Any, gpu_worker: Any
) -> None:
    from training.policy_runs import create_policy_run

    project, engineer, export = exported(make_user, n=32)
    base = tiny_base()
    run = create_policy_run(
        project=project,
        kind="dpo",
        base_artifact_id=base.id,
        dataset_export_id=export.id,
        config={"max_steps": 3, "batch_size": 4, "max_length": 128, "learning_rate": 1e-4},
        user=engineer,
        launcher="accelerate",
        launcher_options=TWO_CPU_PROCESSES,
    )
    finished(run)
    assert run.status == RunStatus.SUCCEEDED, (run.error, step_log(run)[-3000:])
    assert RunMetric.objects.filter(run=run).exists()
    artifact = run.output_artifact
    assert artifact is not None and artifact.kind == "policy"
    assert ModelArtifact.objects.filter(kind="policy").count() == 2  # the base and this one
    assert run.metrics["algorithm"] == "dpo" and "history" not in run.metrics
    assert_ranks_agree(run, artifact, processes=2)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_every_process_of_the_step_and_registers_nothing(
    make_user: Any, client: Client, gpu_worker: Any, settings: Any
) -> None:
    from training.reward_runs import create_reward_run

    project, engineer, export = exported(make_user)
    run = create_reward_run(
        project=project,
        dataset_export_id=export.id,
        base_artifact_id=tiny_base().id,
        config=REWARD | {"max_steps": 5000},
        user=engineer,
        launcher="accelerate",
        launcher_options={"num_processes": 2},
    )
    wait_for("streamed metrics", RunMetric.objects.filter(run=run).exists, timeout=120)
    ranks = wait_for("both ranks", lambda: len(attempt_ranks(run, 1)) == 2, timeout=30)
    assert ranks
    pids = [r["pid"] for r in attempt_ranks(run, 1)]
    client.force_login(engineer)
    answer = client.post(f"/api/projects/{project.id}/training-runs/{run.pk}/cancel/")
    assert answer.status_code == 200, answer.content
    finished(run, timeout=60)
    assert run.status == RunStatus.CANCELLED, (run.error, step_log(run)[-3000:])
    leader = launched_pid(run)
    assert not group_alive(leader) and not any(process_alive(p) for p in [leader, *pids])
    assert "stopping at the next step: signal SIGTERM" in step_log(run)
    assert not ModelArtifact.objects.filter(kind="reward").exists()
    assert not any((Path(settings.ARTIFACT_ROOT) / ".staging").glob("reward-run-*"))


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_is_resumed_from_its_checkpoint_under_the_same_launcher(
    make_user: Any, settings: Any, tmp_path: Path
) -> None:
    from training.reward_runs import create_reward_run
    from training.run_lifecycle import reap_stalled_runs

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the suite's broker is not Redis (make test sets it when Redis answers)")
    project, engineer, export = exported(make_user)
    env = launch_worker_env(settings)
    first = start_worker(env, queues="gpu", log=tmp_path / "worker-1.log")
    run = create_reward_run(
        project=project,
        dataset_export_id=export.id,
        base_artifact_id=tiny_base().id,
        config=REWARD | {"max_steps": 100, "checkpoint_steps": 10},
        user=engineer,
        launcher="accelerate",
        launcher_options=TWO_CPU_PROCESSES,
    )
    checkpoint = run_checkpoint_dir(run) / "checkpoint-10" / "trainer_state.json"
    wait_for("checkpoint-10", checkpoint.exists, timeout=120)
    pids = [r["pid"] for r in attempt_ranks(run, 1)]
    os.kill(first.pid, signal.SIGKILL)  # as the OOM killer would
    first.wait()
    # the orphaned step notices its worker is gone and stops at its next step
    wait_for("the orphaned step to stop", lambda: not any(map(process_alive, pids)), 60)
    assert "the supervising worker" in step_log(run)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.output_artifact is None

    settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT = 1
    time.sleep(1.5)
    second = start_worker(env, queues="gpu", log=tmp_path / "worker-2.log")
    try:
        assert reap_stalled_runs()["requeued"] == [run.pk]
        finished(run)
    finally:
        stop_worker(second)
    assert run.status == RunStatus.SUCCEEDED, (run.error, step_log(run, 2)[-3000:])
    assert run.attempts == 2 and run.launcher == "accelerate"
    resumed_at = json.loads(
        (run_work_dir(run) / "attempt-2" / "metrics.jsonl").read_text().splitlines()[0]
    )["step"]
    assert resumed_at > 10  # from its checkpoint, not from the start
    # every step on record once: the lost attempt's steps before the resumed one included
    # (the trainer's closing summary is a second row of the last step)
    counts = Counter(RunMetric.objects.filter(run=run).values_list("step", flat=True))
    assert set(counts) == set(range(1, 101)), sorted(counts)
    assert all(n == 1 for step, n in counts.items() if step < 100), counts
    assert run.metrics["steps"] == 100
    assert ModelArtifact.objects.filter(kind="reward").count() == 1
    assert_ranks_agree(run, ModelArtifact.objects.get(kind="reward"), processes=2)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_step_that_crashes_fails_the_run_with_its_last_log_lines(
    make_user: Any, gpu_worker: Any
) -> None:
    from training.reward_runs import create_reward_run

    project, engineer, export = exported(make_user, n=16)
    run = create_reward_run(
        project=project,
        dataset_export_id=export.id,
        base_artifact_id=tiny_base().id,
        # valid when queued; the trainer raises on a host without a bf16 CUDA device
        config=REWARD | {"max_steps": 2, "precision": "bf16"},
        user=engineer,
        launcher="subprocess",
    )
    finished(run, timeout=120)
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("LaunchedStepFailed: The subprocess step"), run.error
    assert "exited with status 1" in run.error
    assert "needs a CUDA device that supports bf16" in run.error  # the child's own traceback
    assert "ConfigError" in run.log_tail
    assert not ModelArtifact.objects.filter(kind="reward").exists()


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_reward_run_trains_under_the_subprocess_launcher(make_user: Any, gpu_worker: Any) -> None:
    from training.reward_runs import create_reward_run

    project, engineer, export = exported(make_user, n=16)
    run = create_reward_run(
        project=project,
        dataset_export_id=export.id,
        base_artifact_id=tiny_base().id,
        config=REWARD | {"max_steps": 3},
        user=engineer,
        launcher="subprocess",
        launcher_options={"checksum_weights": True},
    )
    finished(run, timeout=120)
    assert run.status == RunStatus.SUCCEEDED, (run.error, step_log(run)[-3000:])
    assert list(RunMetric.objects.filter(run=run).values_list("step", flat=True))[:3] == [1, 2, 3]
    assert_ranks_agree(run, ModelArtifact.objects.get(kind="reward"), processes=1)
    assert not process_alive(launched_pid(run))


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_ppo_run_trains_under_the_subprocess_launcher(
    make_user: Any, gpu_worker: Any, model_files: dict[str, Path]
) -> None:
    from training.policy_runs import create_policy_run

    project, engineer = project_with_prompts(make_user)
    run = create_policy_run(
        project=project,
        kind="ppo",
        base_artifact_id=register(model_files["policy"], "policy").id,
        reward_artifact_id=register(model_files["reward"], "reward").id,
        config={"total_episodes": 16, "batch_size": 8, "mini_batch_size": 4, "max_new_tokens": 8},
        user=engineer,
        launcher="subprocess",
    )
    finished(run, timeout=180)
    assert run.status == RunStatus.SUCCEEDED, (run.error, step_log(run)[-3000:])
    assert list(RunMetric.objects.filter(run=run).values_list("step", flat=True)) == [1, 2]
    assert run.output_artifact is not None and run.output_artifact.kind == "policy"
    assert "history" not in run.metrics


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_ppo_run_trains_data_parallel_under_accelerate_on_two_cpu_processes(
    make_user: Any, gpu_worker: Any, model_files: dict[str, Path]
) -> None:
    """Our PPO under ``accelerate launch`` over two gloo processes through a real worker:
    each rank samples half of every step's rollouts, the gradients are averaged, so the two
    processes end with the same policy (and β and reward statistics), which is the one
    registered; the steps stream in once each."""
    from transformers import AutoModelForCausalLM

    from training.ml.ppo import state_digest
    from training.policy_runs import create_policy_run

    project, engineer = project_with_prompts(make_user)
    run = create_policy_run(
        project=project,
        kind="ppo",
        base_artifact_id=register(model_files["policy"], "policy").id,
        reward_artifact_id=register(model_files["reward"], "reward").id,
        config={"total_episodes": 24, "batch_size": 8, "mini_batch_size": 4, "max_new_tokens": 8},
        user=engineer,
        launcher="accelerate",
        launcher_options=TWO_CPU_PROCESSES,
    )
    finished(run, timeout=240)
    assert run.status == RunStatus.SUCCEEDED, (run.error, step_log(run)[-3000:])
    assert list(RunMetric.objects.filter(run=run).values_list("step", flat=True)) == [1, 2, 3]
    assert run.metrics["processes"] == 2
    artifact = run.output_artifact
    assert artifact is not None and artifact.kind == "policy"
    assert ModelArtifact.objects.filter(kind="policy", parent=artifact.parent).count() == 1
    ranks = attempt_ranks(run, run.attempts)
    assert len({r["pid"] for r in ranks}) == 2  # really two processes
    fingerprints = [
        json.loads(
            (run_work_dir(run) / f"attempt-{run.attempts}" / "ppo" / f"rank-{i}.json").read_text()
        )
        for i in (0, 1)
    ]
    for key in ("policy", "value", "kl_coef", "reward_mean", "reward_var", "step"):
        assert fingerprints[0][key] == fingerprints[1][key], key
    assert {r.get("weights_sha256") for r in ranks} == {fingerprints[0]["policy"]}
    registered = AutoModelForCausalLM.from_pretrained(artifact_dir(artifact))
    assert state_digest(registered) == fingerprints[0]["policy"]
    assert not process_alive(launched_pid(run))


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["grpo", "rloo"])
def test_grpo_and_rloo_runs_train_under_the_subprocess_launcher(
    kind: str, make_user: Any, gpu_worker: Any, model_files: dict[str, Path]
) -> None:
    from training.policy_runs import create_policy_run

    project, engineer = project_with_prompts(make_user)
    run = create_policy_run(
        project=project,
        kind=kind,
        base_artifact_id=register(model_files["policy"], "policy").id,
        reward_artifact_id=register(model_files["reward"], "reward").id,
        config={"total_episodes": 16, "batch_size": 8, "num_generations": 4, "max_new_tokens": 8},
        user=engineer,
        launcher="subprocess",
    )
    finished(run, timeout=180)
    assert run.status == RunStatus.SUCCEEDED, (run.error, step_log(run)[-3000:])
    assert RunMetric.objects.filter(run=run).exists()
    assert run.output_artifact is not None and run.output_artifact.kind == "policy"
    assert run.metrics["algorithm"] == kind
