"""The ``ray`` and ``openrlhf`` launchers against a real local Ray cluster (CPU, one node,
started by the fixture on free ports under its own temp dir, and stopped by killing exactly
the processes it started): a PPO step submitted as a Ray job leaves its artifact and
succeeds; a cancel stops the job and its process; a failing step gives its exit status and
its log lines; OpenRLHF's command line parses with OpenRLHF's flags and maps Preflab's PPO
settings; the reward server comes up for it; and an OpenRLHF plan runs as a Ray job with a
stand-in trainer (OpenRLHF itself needs CUDA)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.training import openrlhf_flags
from tests.training.test_launchers import _artifacts, gpu_worker
from tests.training.test_policy_runs import model_files
from training.launch.base import StepSpec, get_launcher
from training.launch.openrlhf import (
    OPENRLHF_COMMIT,
    REWARD_URL,
    OpenRLHFLauncher,
    OpenRLHFOptions,
    RewardServer,
    openrlhf_args,
    split_options,
)
from training.launch.ray_jobs import (
    STOPPED_EXIT,
    RayJob,
    RayJobLauncher,
    RayOptions,
    RayUnavailable,
    _job_submission,
    entrypoint,
    job_environment,
)

pytestmark = pytest.mark.slow
__all__ = ["_artifacts", "gpu_worker", "model_files"]  # fixtures of the worker test

REPO = Path(__file__).resolve().parents[2]
STAND_IN = Path(__file__).with_name("openrlhf_stand_in.py")


# --- a real local Ray cluster -------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    address: str  # the dashboard's job server
    temp_dir: Path
    head: int  # pid of `ray start --block`, the leader of the cluster's process group


def http_json(url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    """GET (or POST ``body`` as JSON to) a local URL: the status and the decoded answer."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        connection.request("GET" if body is None else "POST", parts.path, data, headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def stop_cluster(head: subprocess.Popen[bytes]) -> None:
    """Stop exactly this cluster: SIGTERM to its `ray start --block` (which stops the
    processes it started), then SIGKILL whatever of its process tree is left. Never
    `ray stop`, which would stop every Ray cluster on the machine."""
    tree = descendants(head.pid)
    if head.poll() is None:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
    for process in [*tree, *descendants(head.pid)]:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(tree, timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    temp_dir = tmp_path_factory.mktemp("ray")
    own_temp = len(str(temp_dir)) > 40  # Ray's socket paths under it must stay < 108 bytes
    if own_temp:
        temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    dashboard = free_port()
    ports = {
        "--port": free_port(),  # the GCS: never 6379 (Redis)
        "--dashboard-port": dashboard,
        "--ray-client-server-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(),
        "--metrics-export-port": free_port(),
        "--node-manager-port": free_port(),
        "--object-manager-port": free_port(),
    }
    command = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--dashboard-host",
        "127.0.0.1",
        "--include-dashboard",
        "true",
        "--num-cpus",
        "1",
        "--object-store-memory",
        "100000000",
        "--disable-usage-stats",
        "--temp-dir",
        str(temp_dir),
        *[str(item) for pair in ports.items() for item in pair],
    ]
    log = (temp_dir / "ray-start.log").open("wb")
    head = subprocess.Popen(
        command,
        cwd=temp_dir,  # not the repository: the job must import the code it was shipped
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if head.poll() is not None:
                pytest.fail(f"ray start exited: {(temp_dir / 'ray-start.log').read_text()}")
            try:
                if http_json(f"{address}/api/version", timeout=5)[0] == 200:
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no Ray dashboard at {address} after 180 s")
            time.sleep(1)
        yield Cluster(address, temp_dir, head.pid)
    finally:
        stop_cluster(head)
        log.close()
        if own_temp:
            shutil.rmtree(temp_dir, ignore_errors=True)


# --- tiny models and steps ----------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny synthetic-task policy, a reward model of its shape (random head) and prompts."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.ml.synthetic import PolicyShape, build_synthetic_policy, prompt_rows

    root = tmp_path_factory.mktemp("ray-models")
    policy = build_synthetic_policy(
        root / "policy", shape=PolicyShape(hidden=32, layers=1, heads=2, pretrain_steps=20)
    )
    reward = root / "reward"
    AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1).save_pretrained(reward)
    AutoTokenizer.from_pretrained(policy).save_pretrained(reward)
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in prompt_rows(16, 5)))
    return {"policy": policy, "reward": reward, "prompts": prompts}


def ppo_spec(models: dict[str, Path], work: Path, config: dict[str, Any]) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    spec = StepSpec(
        kind="ppo",
        config=config,
        base=str(models["policy"]),
        out=str(work / "out"),
        checkpoint_dir=str(work / "checkpoints"),
        metrics_file=str(work / "metrics.jsonl"),
        log_file=str(work / "step.log"),
        reward=str(models["reward"]),
        prompts_file=str(models["prompts"]),
    )
    return spec.write(work / "spec.json")


def ppo_cli(spec: StepSpec, config_file: Path) -> list[str]:
    """Our PPO CLI on the spec's inputs (the job's command in place of the child entry point,
    which another module provides)."""
    return [
        sys.executable,
        "-m",
        "training.ml.ppo",
        "--policy",
        spec.base,
        "--reward",
        str(spec.reward),
        "--prompts",
        str(spec.prompts_file),
        "--out",
        spec.out,
        "--config",
        str(config_file),
    ]


def wait(job: RayJob, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (code := job.poll()) is None:
        if time.monotonic() > deadline:
            job.terminate(5)
            pytest.fail(f"{job.describe()} still running after {timeout} s")
        time.sleep(0.5)
    return code


def processes_naming(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def launcher(cluster: Cluster, **options: Any) -> RayJobLauncher:
    made = get_launcher("ray", {"address": cluster.address, "python": sys.executable, **options})
    assert isinstance(made, RayJobLauncher)
    return made


# --- the ray launcher ---------------------------------------------------------------------


def test_ppo_step_runs_as_a_ray_job_and_leaves_its_artifact(
    cluster: Cluster, models: dict[str, Path], tmp_path: Path
) -> None:
    config = {"total_episodes": 16, "batch_size": 8, "mini_batch_size": 8, "ppo_epochs": 1}
    spec_path = ppo_spec(models, tmp_path, config)
    spec = StepSpec.read(spec_path)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    env = {"OMP_NUM_THREADS": "1", "PATH": "/worker/bin", "PREFLAB_RUN": "7"}

    started = time.monotonic()
    job = launcher(cluster).submit(ppo_cli(spec, config_file), spec=spec, env=env, kind="ppo")
    assert wait(job, 240) == 0, Path(spec.log_file).read_text()[-3000:]
    print(f"PPO as a Ray job: {time.monotonic() - started:.1f} s")

    assert (Path(spec.out) / "model.safetensors").exists()
    assert job.describe() == f"ray job {job.submission_id}"
    log = Path(spec.log_file).read_text()
    steps = [json.loads(line) for line in log.splitlines() if line.startswith('{"step"')]
    assert [s["step"] for s in steps] == [1, 2]  # the CLI's per-step lines, via the job's logs
    info = job.client.get_job_info(job.submission_id)
    assert info.status.value == "SUCCEEDED"
    env_vars = info.runtime_env["env_vars"]
    assert env_vars["PREFLAB_RUN"] == "7" and "PATH" not in env_vars  # the worker's host stays
    assert info.runtime_env["py_modules"]  # the worker's training package was shipped
    assert job.poll() == 0  # a finished job keeps its status


def test_launch_submits_the_child_entry_point_on_the_spec(
    cluster: Cluster, models: dict[str, Path], tmp_path: Path
) -> None:
    spec_path = ppo_spec(models, tmp_path, {})
    job = launcher(cluster, python="/opt/py/bin/python3").launch(spec_path, env={})
    try:
        info = job.client.get_job_info(job.submission_id)
        assert info.entrypoint == shlex.join(
            ["/opt/py/bin/python3", "-m", "training.launch.child", str(spec_path)]
        )
        assert info.metadata["preflab_kind"] == "ppo"
    finally:
        job.terminate(5)
    assert job.poll() is not None


def test_cancel_stops_the_job_and_its_process(
    cluster: Cluster, models: dict[str, Path], tmp_path: Path
) -> None:
    config = {"total_episodes": 100_000, "batch_size": 8, "mini_batch_size": 8}
    spec_path = ppo_spec(models, tmp_path, config)
    spec = StepSpec.read(spec_path)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    job = launcher(cluster, stop_grace_seconds=5).submit(
        ppo_cli(spec, config_file), spec=spec, env={}, kind="ppo"
    )
    deadline = time.monotonic() + 120
    while not processes_naming(spec.out):  # the step's process is up
        assert job.poll() is None, Path(spec.log_file).read_text()[-3000:]
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.5)

    started = time.monotonic()
    job.terminate(grace_seconds=5)
    print(f"cancel: {time.monotonic() - started:.1f} s")

    assert job.poll() == STOPPED_EXIT
    assert job.status() == "STOPPED"
    assert processes_naming(spec.out) == []
    assert not (Path(spec.out) / "model.safetensors").exists()


def test_a_new_attempt_stops_the_job_an_earlier_attempt_left_running(
    cluster: Cluster, models: dict[str, Path], tmp_path: Path
) -> None:
    """A worker that died leaves its Ray job running (the job cannot see the worker): the
    re-queued attempt's submission stops it before resuming from the run's checkpoints."""
    config = {"total_episodes": 100_000, "batch_size": 8, "mini_batch_size": 8}
    spec_path = ppo_spec(models, tmp_path, config)
    spec = StepSpec.read(spec_path)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    ray = launcher(cluster, stop_grace_seconds=5)
    orphan = ray.submit(ppo_cli(spec, config_file), spec=spec, env={}, kind="ppo")
    deadline = time.monotonic() + 120
    while not processes_naming(spec.out):
        assert orphan.poll() is None, Path(spec.log_file).read_text()[-3000:]
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.5)
    other_run = StepSpec.read(ppo_spec(models, tmp_path / "other", config))
    # another run's job, running while the second attempt is submitted
    bystander = ray.submit(
        [sys.executable, "-c", "import time; time.sleep(20)"], spec=other_run, env={}, kind="ppo"
    )
    quick = tmp_path / "quick.json"
    quick.write_text(json.dumps({"total_episodes": 8, "batch_size": 8, "mini_batch_size": 8}))
    second = ray.submit(ppo_cli(spec, quick), spec=spec, env={}, kind="ppo")
    assert orphan.status() == "STOPPED"  # stopped before the second was submitted
    assert "left running by an earlier attempt" in Path(spec.log_file).read_text()
    assert wait(second, 120) == 0, Path(spec.log_file).read_text()[-3000:]
    assert wait(bystander, 90) == 0  # another run's job was left alone
    assert bystander.status() == "SUCCEEDED"


def test_a_failing_step_gives_its_exit_status_and_log_lines(
    cluster: Cluster, models: dict[str, Path], tmp_path: Path
) -> None:
    spec_path = ppo_spec(models, tmp_path, {})
    spec = StepSpec.read(spec_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cliprange": 3}))
    job = launcher(cluster).submit(ppo_cli(spec, bad), spec=spec, env={}, kind="ppo")
    assert wait(job, 120) == 2  # argparse's error status, from the job's driver
    log = Path(spec.log_file).read_text()
    assert "cliprange" in log and "bad config" in log


def test_a_job_whose_status_stays_unreadable_is_reported(cluster: Cluster, tmp_path: Path) -> None:
    client = launcher(cluster).client()
    patient = RayJob(client, "preflab-no-such-job", tmp_path / "log", unreachable_seconds=60)
    assert patient.poll() is None  # for now, as far as we know, still running
    impatient = RayJob(client, "preflab-no-such-job", tmp_path / "log", unreachable_seconds=0)
    assert impatient.poll() is None
    time.sleep(0.1)
    with pytest.raises(RuntimeError, match="no status for 0 s"):
        impatient.poll()


def test_options_environment_and_entrypoint() -> None:
    with pytest.raises(ValueError, match=r"unknown ray launcher option.*colour"):
        RayOptions.parse({"address": "http://h:8265", "colour": "red"})
    saved = os.environ.pop("RAY_ADDRESS", None)
    try:
        with pytest.raises(ValueError, match="needs an address"):
            get_launcher("ray", {})
    finally:
        if saved is not None:
            os.environ["RAY_ADDRESS"] = saved
    options = RayOptions(address="http://h:8265", env_vars={"HF_HOME": "/shared/hf"})
    env = job_environment(
        {"PATH": "/x", "VIRTUAL_ENV": "/v", "RAY_ADDRESS": "http://h:8265", "A": "1"}, options
    )
    assert env == {"A": "1", "HF_HOME": "/shared/hf", "RAY_JOB_STOP_WAIT_TIME_S": "30"}
    assert entrypoint(["/venv/bin/python3.11", "-m", "m", "a b"], "python") == "python -m m 'a b'"
    assert entrypoint(["accelerate", "launch"], "python") == "accelerate launch"


def test_without_ray_the_launcher_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(RayUnavailable, match=r"pip install '\.\[ray\]'"):
        _job_submission()


# --- OpenRLHF -----------------------------------------------------------------------------

PPO_SETTINGS = {
    "total_episodes": 64,
    "batch_size": 16,
    "mini_batch_size": 8,
    "ppo_epochs": 2,
    "max_new_tokens": 48,
    "temperature": 0.7,
    "learning_rate": 3e-6,
    "value_learning_rate": 9e-6,
    "kl_coef": 0.05,
    "target_kl": 6.0,
    "kl_horizon": 10_000,
    "lam": 0.95,
    "reward_clip": 5.0,
    "value_warmup_steps": 2,
    "checkpoint_steps": 5,
}


def openrlhf_spec(models: dict[str, Path], work: Path, config: dict[str, Any]) -> StepSpec:
    return StepSpec.read(ppo_spec(models, work, config))


def test_openrlhf_command_parses_with_its_flags_and_maps_our_ppo_settings(
    models: dict[str, Path], tmp_path: Path
) -> None:
    spec = openrlhf_spec(models, tmp_path, PPO_SETTINGS)
    options = OpenRLHFOptions(num_nodes=2, num_gpus_per_node=4)
    argv, notes = openrlhf_args(spec, options, reward_url="http://10.0.0.1:5000/get_reward")
    args = openrlhf_flags.parse(argv)

    assert args.pretrain == spec.base and args.save_path == spec.out
    assert args.remote_rm_url == "http://10.0.0.1:5000/get_reward"
    assert args.critic_pretrain == spec.reward  # the value model starts from the reward model
    assert args.prompt_data == spec.prompts_file and args.input_key == "prompt"
    assert args.apply_chat_template  # the synthetic prompts are message lists
    assert (args.actor_num_nodes, args.actor_num_gpus_per_node) == (2, 4)
    assert (args.critic_num_nodes, args.ref_num_gpus_per_node) == (2, 4)
    # 64 episodes over 16 prompts: 4 passes, one sample each
    assert (args.num_episodes, args.max_samples, args.n_samples_per_prompt) == (4, None, 1)
    assert (args.rollout_batch_size, args.train_batch_size) == (16, 8)
    assert args.micro_train_batch_size == 1  # 8 per gradient step over 8 GPUs
    assert args.micro_rollout_batch_size == 2  # 16 episodes over 8 GPUs
    assert (args.max_epochs, args.generate_max_len) == (2, 48)
    assert args.temperature == 0.7
    assert (args.actor_learning_rate, args.critic_learning_rate) == (3e-6, 9e-6)
    # OpenRLHF's KL target is per token: 6 nats per response over 48 tokens at most
    assert (args.init_kl_coef, args.kl_target, args.kl_horizon) == (0.05, 0.125, 10_000)
    assert args.kl_estimator == "k1" and args.advantage_estimator == "gae"
    assert (args.eps_clip, args.value_clip, args.gamma, args.lambd) == (0.2, 0.2, 1.0, 0.95)
    assert args.reward_clip_range == [-5.0, 5.0]
    assert args.bf16 and args.colocate_all_models
    assert not args.normalize_reward  # a remote reward is not standardized by OpenRLHF
    assert any(n.startswith("normalize_reward=True is not carried over") for n in notes)
    assert args.freezing_actor_steps == 2
    assert (args.ckpt_path, args.save_steps, args.load_checkpoint) == (spec.checkpoint_dir, 5, True)
    assert args.zero_stage == 3 and args.vllm_num_engines is None
    assert any(n.startswith("missing_eos_penalty=1.0 is not carried over") for n in notes)


def test_openrlhf_command_follows_the_prompts_and_the_options(
    models: dict[str, Path], tmp_path: Path
) -> None:
    text_prompts = tmp_path / "text.jsonl"
    text_prompts.write_text(
        "".join(json.dumps({"prompt": f"Q: {i}\nA:"}) + "\n" for i in range(40))
    )
    other_reward = tmp_path / "other-reward"  # a reward model with a tokenizer of its own
    shutil.copytree(models["reward"], other_reward)
    tokenizer = json.loads((other_reward / "tokenizer.json").read_text())
    tokenizer["model"]["vocab"] = {f"x{t}": i for t, i in tokenizer["model"]["vocab"].items()}
    (other_reward / "tokenizer.json").write_text(json.dumps(tokenizer))
    config = {"total_episodes": 24, "batch_size": 8, "mini_batch_size": 8, "kl_coef": 0.1}
    spec = replace(
        openrlhf_spec(models, tmp_path, config),
        prompts_file=str(text_prompts),
        reward=str(other_reward),
    )
    options = OpenRLHFOptions(
        num_gpus_per_node=1,
        vllm_num_engines=1,
        colocate_all_models=False,
        extra_args=["--adam_offload"],
    )
    args = openrlhf_flags.parse(openrlhf_args(spec, options)[0])
    assert not args.apply_chat_template  # plain-text prompts are used as they are
    assert (args.num_episodes, args.max_samples) == (1, 24)  # fewer episodes than prompts
    assert args.remote_rm_url == REWARD_URL  # filled in on the cluster
    assert args.vllm_num_engines == 1 and not args.colocate_all_models and args.adam_offload
    assert args.kl_horizon == 8  # ours: an eighth of the run, at least one batch
    assert args.critic_pretrain is None  # OpenRLHF's default: the critic starts from the policy


def test_openrlhf_refuses_what_it_cannot_run(models: dict[str, Path], tmp_path: Path) -> None:
    options = OpenRLHFOptions(num_gpus_per_node=8)
    with pytest.raises(ValueError, match="PPO steps only"):
        openrlhf_args(replace(openrlhf_spec(models, tmp_path, {}), kind="grpo"), options)
    with pytest.raises(ValueError, match="multiple of the actor's 8 GPUs"):
        openrlhf_args(openrlhf_spec(models, tmp_path, {"mini_batch_size": 12}), options)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        json.dumps({"prompt": "Q: a"})
        + "\n"
        + json.dumps({"prompt": [{"role": "user", "content": "a"}]})
        + "\n"
    )
    with pytest.raises(ValueError, match="chat template to every prompt or to none"):
        openrlhf_args(
            replace(openrlhf_spec(models, tmp_path, {}), prompts_file=str(mixed)), options
        )
    with pytest.raises(ValueError, match=r"unknown openrlhf launcher option.*gpus"):
        split_options({"address": "http://h:8265", "gpus": 8})
    made = get_launcher("openrlhf", {"address": "http://h:8265", "num_gpus_per_node": 1})
    assert isinstance(made, OpenRLHFLauncher)
    reward_spec = ppo_spec(models, tmp_path / "reward-run", {})
    StepSpec.write(replace(StepSpec.read(reward_spec), kind="reward"), reward_spec)
    with pytest.raises(ValueError, match="PPO steps only, not 'reward'"):
        made.launch(reward_spec, env={})


def test_openrlhf_flag_table_rejects_what_openrlhf_would() -> None:
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        openrlhf_flags.parser().parse_args(["--kl_coef", "0.1"])  # OpenRLHF: --init_kl_coef
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        openrlhf_flags.parser().parse_args(["--kl_estimator", "k4"])


def test_reward_server_comes_up_for_openrlhf_and_goes_down(models: dict[str, Path]) -> None:
    server = RewardServer(
        {
            "reward": str(models["reward"]),
            "bind": "127.0.0.1",
            "host": "",
            "port": 0,
            "max_length": 128,
            "ensemble_lambda": 1.0,
            "batch_size": 4,
            "start_timeout": 120,
        }
    )
    try:
        url = server.wait_ready()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/get_reward")
        status, answer = http_json(url, {"query": ["the cat sat", "a dog"]})
        assert status == 200
        rewards = answer["rewards"]
        assert len(rewards) == 2 and rewards[0] != rewards[1]
    finally:
        server.stop()
    assert server.process.poll() is not None


def test_openrlhf_plan_runs_as_a_ray_job_with_a_stand_in_trainer(
    cluster: Cluster, models: dict[str, Path], tmp_path: Path
) -> None:
    spec_path = ppo_spec(
        models, tmp_path, {"total_episodes": 16, "batch_size": 8, "mini_batch_size": 8}
    )
    spec = StepSpec.read(spec_path)
    made = get_launcher(
        "openrlhf",
        {
            "address": cluster.address,
            "python": sys.executable,
            "num_gpus_per_node": 1,
            "reward_bind": "127.0.0.1",
            "trainer": [sys.executable, str(STAND_IN)],
        },
    )
    assert isinstance(made, OpenRLHFLauncher)
    started = time.monotonic()
    job = made.launch(spec_path, env={"OMP_NUM_THREADS": "1"})
    code = wait(job, 240)
    log = Path(spec.log_file).read_text()
    assert code == 0, log[-3000:]
    print(f"OpenRLHF plan with a stand-in trainer as a Ray job: {time.monotonic() - started:.1f} s")

    assert "[reward server] serving" in log
    assert "stand-in: rewards" in log  # the trainer reached the reward server over HTTP
    assert (Path(spec.out) / "config.json").exists()
    events = [json.loads(line) for line in Path(spec.metrics_file).read_text().splitlines()]
    assert events[-1]["event"] == "done"
    assert events[-1]["metrics"]["openrlhf_commit"] == OPENRLHF_COMMIT
    plan = json.loads((spec_path.parent / "openrlhf.json").read_text())
    assert plan["trainer"][:2] == [sys.executable, str(STAND_IN)]
    assert not processes_naming(str(models["reward"]))  # the reward server is gone


# --- through a worker: a run with launcher "ray" ---------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_ppo_run_with_the_ray_launcher_runs_through_a_worker(
    cluster: Cluster, make_user: Any, gpu_worker: Any, model_files: dict[str, Path]
) -> None:
    """The whole path: the worker writes the spec, submits the child entry point as a Ray job
    (the training package shipped as py_modules), tails its metrics into the run and
    registers the policy the job saved."""
    from tests.training.test_launchers import finished, step_log
    from tests.training.test_policy_runs import project_with_prompts, register
    from training.models import RunMetric, RunStatus
    from training.policy_runs import create_policy_run

    project, engineer = project_with_prompts(make_user)
    run = create_policy_run(
        project=project,
        kind="ppo",
        base_artifact_id=register(model_files["policy"], "policy").id,
        reward_artifact_id=register(model_files["reward"], "reward").id,
        config={"total_episodes": 16, "batch_size": 8, "mini_batch_size": 4, "max_new_tokens": 8},
        user=engineer,
        launcher="ray",
        launcher_options={"address": cluster.address, "python": sys.executable},
    )
    finished(run, timeout=240)
    assert run.status == RunStatus.SUCCEEDED, (run.error, step_log(run)[-3000:])
    assert "ray job preflab-ppo-" in run.log_tail
    assert list(RunMetric.objects.filter(run=run).values_list("step", flat=True)) == [1, 2]
    assert run.output_artifact is not None and run.output_artifact.kind == "policy"
    assert "[ray] submitting" in step_log(run)
