"""The ``openrlhf`` launcher: a round's PPO step as OpenRLHF's Ray PPO, on a Ray cluster,
optimizing the reward model Preflab trained, served by Preflab's reward server.

For models beyond one node. The worker (``launch``) turns the step's spec into a *plan* —
OpenRLHF's command line (``python3 -m openrlhf.cli.train_ppo_ray …``, :func:`openrlhf_args`)
and the reward server's settings — writes it beside the spec (``openrlhf.json``) and submits
``python -m training.launch.openrlhf PLAN`` as a Ray job through the ``ray`` launcher
(:mod:`training.launch.ray_jobs`: same options, same shared-storage assumption). On the
cluster, that entrypoint (:func:`main`):

1. starts the reward server, ``python -m training.ml.reward_server --reward DIR --port 0``,
   on the node the job's entrypoint runs on (the head, or where ``entrypoint_num_gpus``
   puts it), listening on ``reward_bind`` (all interfaces by default) and advertised at that
   node's address in the Ray cluster, and waits until ``/health`` answers;
2. runs OpenRLHF with ``--remote_rm_url http://NODE:PORT/get_reward``;
3. stops the server when OpenRLHF ends, however it ends (a cancel's SIGTERM included), and on
   success writes the step's ``done`` event to the metrics file.

Why the server is part of the job rather than started by the worker: it lives and dies with
the job (a cancel, a lost worker, a crashed trainer never leave a server holding a GPU's
memory or a port); it runs on the cluster, near the GPUs and the shared storage, while a GPU
worker host may be nowhere near the Ray cluster's network; and the worker needs no port
configuration per host. The server has no authentication: the cluster's network must be
private (or set ``reward_bind`` to ``127.0.0.1`` for a single-node cluster).

Flags are checked against OpenRLHF's ``openrlhf/cli/train_ppo_ray.py`` at commit
021d1b09641902f7f06dc42331c75b37793ca950 (the ``--attn_implementation`` era; every flag used
here also exists, with the same meaning, at the older f5b3f08a05fd6cbd9a5b712ed931bbb72c24f2c4).
The mapping of Preflab's :class:`training.ml.ppo.PPOConfig` is :func:`openrlhf_args`; fields
OpenRLHF has no counterpart for are listed in the plan's ``notes`` and in the job's log.

Only PPO runs take this launcher; OpenRLHF itself needs CUDA (not run in Preflab's tests:
they run the plan through a real Ray cluster with a stand-in trainer).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import FrameType
from typing import Any

from training.launch.base import StepSpec, register_launcher
from training.launch.ray_jobs import RayJob, RayJobLauncher, RayOptions

OPENRLHF_COMMIT = "021d1b09641902f7f06dc42331c75b37793ca950"
TRAINER_MODULE = "openrlhf.cli.train_ppo_ray"
PLAN_NAME = "openrlhf.json"
REWARD_URL = "{reward_url}"  # placeholder in the plan's argv, filled in on the cluster
ENSEMBLE_MANIFEST = "preflab_ensemble.json"

# PPOConfig fields OpenRLHF has no flag for: what a run loses by taking this launcher.
UNMAPPED = {
    "missing_eos_penalty": "no missing-EOS penalty (OpenRLHF has an overlong penalty instead)",
    "empty_response_penalty": "no empty-response floor",
    "vf_coef": "the critic has its own optimizer (critic_learning_rate), no value-loss weight",
    "max_approx_kl": "no early stop of PPO epochs on approx KL",
    "normalize_reward": "OpenRLHF's --normalize_reward applies a reward model's saved mean and "
    "std, not statistics of a remote reward's scores: the server's raw scores are the rewards",
    "reward_norm_rollouts": "no reward normalization (see normalize_reward)",
    "kl_hard_stop": "no KL hard stop",
    "critic_lora_rank": "LoRA applies to the actor only",
    "whiten_advantages": "advantages are always normalized",
    "logprob_chunk_size": "no counterpart",
    "memory_limit_gib": "no memory estimate is checked",
}


@dataclass(frozen=True)
class OpenRLHFOptions:
    """The OpenRLHF part of a run's ``launcher_options`` (the rest are :class:`RayOptions`)."""

    num_nodes: int = 1  # actor, reference and critic each on num_nodes × num_gpus_per_node
    num_gpus_per_node: int = 8
    colocate_all_models: bool = True  # share the GPUs (actor, ref, critic, vLLM)
    vllm_num_engines: int = 0  # 0: generation without vLLM
    vllm_tensor_parallel_size: int = 1
    zero_stage: int = 3
    adam_offload: bool = False
    prompt_max_len: int = 1024
    micro_rollout_batch_size: int = 0  # 0: rollout_forward_batch_size, else OpenRLHF's 8
    critic_from_reward: bool = True  # value model from the reward model, as Preflab's PPO
    kl_target_per_token: float = 0.0  # 0: target_kl / max_new_tokens (see openrlhf_args)
    reward_bind: str = "0.0.0.0"  # the reward server's listening address  # noqa: S104
    reward_host: str = ""  # its advertised address ("": the entrypoint node's Ray address)
    reward_port: int = 0  # 0: any free port
    reward_batch_size: int = 16
    reward_start_timeout: float = 900.0  # seconds to load the reward model
    trainer: list[str] = field(default_factory=list)  # in place of python -m TRAINER_MODULE
    extra_args: list[str] = field(default_factory=list)  # appended to OpenRLHF's flags


def split_options(options: dict[str, Any]) -> tuple[RayOptions, OpenRLHFOptions]:
    ray_keys = {f.name for f in fields(RayOptions)}
    ours = {f.name for f in fields(OpenRLHFOptions)}
    unknown = sorted(set(options) - ray_keys - ours)
    if unknown:
        raise ValueError(
            f"unknown openrlhf launcher option(s) {', '.join(unknown)}: "
            f"valid are {', '.join(sorted(ray_keys | ours))}"
        )
    ray_options = RayOptions.parse({k: v for k, v in options.items() if k in ray_keys})
    return ray_options, OpenRLHFOptions(**{k: v for k, v in options.items() if k in ours})


def _prompts_are_conversations(prompts_file: Path) -> bool:
    """True when every prompt is a list of messages (OpenRLHF's ``--apply_chat_template``),
    False when every one is text; a file of both cannot be one OpenRLHF dataset."""
    from training.ml.prompts import load_prompts

    prompts = load_prompts(prompts_file)
    kinds = {isinstance(p, list) for p in prompts}
    if len(kinds) > 1:
        raise ValueError(
            "OpenRLHF applies the chat template to every prompt or to none: the prompts file "
            "mixes message lists and plain text"
        )
    return kinds == {True}


def _count_prompts(prompts_file: Path) -> int:
    with prompts_file.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _critic_can_start_from(reward: Path, policy: Path) -> bool:
    """One model (not an ensemble) whose tokenizer is the policy's: OpenRLHF's critic reads
    the policy's token ids."""
    if not (reward / "config.json").exists() or (reward / ENSEMBLE_MANIFEST).exists():
        return False
    try:
        ours, theirs = (json.loads((p / "tokenizer.json").read_text()) for p in (reward, policy))
    except (OSError, ValueError):
        return False
    return bool(ours.get("model") == theirs.get("model"))


def openrlhf_args(
    spec: StepSpec, options: OpenRLHFOptions, *, reward_url: str = REWARD_URL
) -> tuple[list[str], list[str]]:
    """OpenRLHF's flags for the PPO step ``spec`` and the notes on what does not carry over.

    Preflab → OpenRLHF (``train_ppo_ray.py`` @ ``OPENRLHF_COMMIT``):

    - policy → ``--pretrain``; staging folder → ``--save_path``; prompts →
      ``--prompt_data`` (``--input_key prompt``; ``--apply_chat_template`` for message lists);
    - reward model → ``--remote_rm_url`` (reward_max_length and ensemble_lambda go to the
      server), and ``--critic_pretrain`` when it is one model with the policy's tokenizer
      (Preflab's value model starts from the reward model too);
    - checkpoints → ``--ckpt_path``, checkpoint_steps → ``--save_steps`` + ``--load_checkpoint``;
    - total_episodes → ``--num_episodes`` passes over the prompts (``--max_samples`` when
      less than one pass); batch_size → ``--rollout_batch_size`` (one sample per prompt);
      mini_batch_size → ``--train_batch_size``; ``--micro_train_batch_size`` =
      mini_batch_size / (gradient_accumulation_steps × the actor's GPUs); ppo_epochs →
      ``--max_epochs``; max_new_tokens → ``--generate_max_len``;
    - temperature, top_p, seed, gamma, kl_estimator, lora_rank, gradient_checkpointing → the
      same names; lam → ``--lambd``; learning_rate → ``--actor_learning_rate``;
      value_learning_rate → ``--critic_learning_rate``; cliprange → ``--eps_clip``;
      cliprange_value → ``--value_clip``; max_grad_norm → ``--max_norm``;
      value_warmup_steps → ``--freezing_actor_steps``; precision other than fp32 → ``--bf16``;
    - kl_coef → ``--init_kl_coef``; adaptive_kl → ``--kl_target`` (else a fixed β) with
      ``--kl_horizon`` (ours, an eighth of the run when 0); target_kl, nats per response →
      target_kl / max_new_tokens, as OpenRLHF's controller reads the mean KL per token
      (``kl_target_per_token`` overrides);
    - reward_clip → ``--reward_clip_range -c c``, on the server's raw scores.
    """
    from training.ml.ppo import parse_ppo_config

    if spec.kind != "ppo":
        raise ValueError(f"the openrlhf launcher runs PPO steps only, not {spec.kind!r}")
    if spec.reward is None or spec.prompts_file is None:
        raise ValueError("a PPO step needs a reward model and a prompts file")
    config = parse_ppo_config(spec.config)
    prompts_file = Path(spec.prompts_file)
    n_prompts = _count_prompts(prompts_file)
    world = options.num_nodes * options.num_gpus_per_node  # actor data-parallel size
    if config.mini_batch_size % (world * config.gradient_accumulation_steps):
        raise ValueError(
            f"mini_batch_size {config.mini_batch_size} must be a multiple of the actor's "
            f"{world} GPUs × gradient_accumulation_steps {config.gradient_accumulation_steps}"
        )
    micro_train = config.mini_batch_size // (world * config.gradient_accumulation_steps)
    micro_rollout = options.micro_rollout_batch_size or config.rollout_forward_batch_size or 8
    micro_rollout = max(1, min(micro_rollout, config.batch_size // world))
    if config.batch_size // micro_rollout < world:
        raise ValueError(f"batch_size {config.batch_size} gives fewer rollouts than {world} GPUs")

    args = ["--pretrain", spec.base, "--remote_rm_url", reward_url, "--save_path", spec.out]
    if options.critic_from_reward and _critic_can_start_from(Path(spec.reward), Path(spec.base)):
        args += ["--critic_pretrain", spec.reward]
    args += ["--prompt_data", str(prompts_file), "--input_key", "prompt"]
    if _prompts_are_conversations(prompts_file):
        args.append("--apply_chat_template")
    for role in ("actor", "ref", "critic"):
        args += [f"--{role}_num_nodes", str(options.num_nodes)]
        args += [f"--{role}_num_gpus_per_node", str(options.num_gpus_per_node)]
    if options.colocate_all_models:
        args.append("--colocate_all_models")
    if options.vllm_num_engines:
        args += ["--vllm_num_engines", str(options.vllm_num_engines)]
        args += ["--vllm_tensor_parallel_size", str(options.vllm_tensor_parallel_size)]
    args += ["--zero_stage", str(options.zero_stage)]
    if options.adam_offload:
        args.append("--adam_offload")
    if config.precision != "fp32":
        args.append("--bf16")
    if config.gradient_checkpointing:
        args.append("--gradient_checkpointing")

    # episodes and batches
    passes = math.ceil(config.total_episodes / n_prompts)
    args += ["--num_episodes", str(passes)]
    if config.total_episodes < n_prompts:
        args += ["--max_samples", str(config.total_episodes)]
    args += [
        "--n_samples_per_prompt",
        "1",
        "--rollout_batch_size",
        str(config.batch_size),
        "--micro_rollout_batch_size",
        str(micro_rollout),
        "--train_batch_size",
        str(config.mini_batch_size),
        "--micro_train_batch_size",
        str(micro_train),
        "--max_epochs",
        str(config.ppo_epochs),
        "--prompt_max_len",
        str(options.prompt_max_len),
        "--generate_max_len",
        str(config.max_new_tokens),
        "--temperature",
        repr(config.temperature),
        "--top_p",
        repr(config.top_p),
        "--seed",
        str(config.seed),
    ]
    # optimization
    args += [
        "--actor_learning_rate",
        repr(config.learning_rate),
        "--critic_learning_rate",
        repr(config.value_learning_rate),
        "--max_norm",
        repr(config.max_grad_norm),
        "--eps_clip",
        repr(config.cliprange),
        "--value_clip",
        repr(config.cliprange_value),
        "--gamma",
        repr(config.gamma),
        "--lambd",
        repr(config.lam),
        "--advantage_estimator",
        "gae",
    ]
    if config.value_warmup_steps:
        args += ["--freezing_actor_steps", str(config.value_warmup_steps)]
    if config.lora_rank:
        args += ["--lora_rank", str(config.lora_rank)]
    # KL control
    args += ["--init_kl_coef", repr(config.kl_coef), "--kl_estimator", config.kl_estimator]
    if config.adaptive_kl:
        # OpenRLHF's controller reads the mean KL per token of a response, Preflab's target
        # is the KL of a whole response: per token, over the longest response (a tighter
        # budget for the shorter ones)
        target = options.kl_target_per_token or config.target_kl / config.max_new_tokens
        horizon = config.kl_horizon or max(config.batch_size, config.total_episodes // 8)
        args += ["--kl_target", repr(target), "--kl_horizon", str(horizon)]
    # rewards (clipped as scored: OpenRLHF does not standardize a remote reward)
    if config.reward_clip:
        args += ["--reward_clip_range", repr(-config.reward_clip), repr(config.reward_clip)]
    # checkpoints
    args += ["--ckpt_path", spec.checkpoint_dir]
    if config.checkpoint_steps:
        args += ["--save_steps", str(config.checkpoint_steps), "--load_checkpoint"]
    args += list(options.extra_args)

    notes = [
        f"{name}={getattr(config, name)!r} is not carried over: {why}"
        for name, why in UNMAPPED.items()
    ]
    if config.total_episodes % n_prompts and config.total_episodes > n_prompts:
        notes.append(
            f"total_episodes={config.total_episodes} becomes {passes} whole passes over "
            f"{n_prompts} prompts ({passes * n_prompts} episodes)"
        )
    return args, notes


def build_plan(spec_path: Path, options: OpenRLHFOptions, python: str) -> dict[str, Any]:
    """What the job's entrypoint runs: OpenRLHF's command, the reward server's settings."""
    from training.ml.ppo import parse_ppo_config

    spec = StepSpec.read(spec_path)
    args, notes = openrlhf_args(spec, options)
    config = parse_ppo_config(spec.config)
    trainer = list(options.trainer) or [python, "-m", TRAINER_MODULE]
    assert spec.reward is not None
    return {
        "spec": str(spec_path),
        "openrlhf_commit": OPENRLHF_COMMIT,
        "trainer": [*trainer, *args],
        "reward_server": {
            "reward": spec.reward,
            "bind": options.reward_bind,
            "host": options.reward_host,
            "port": options.reward_port,
            "max_length": config.reward_max_length,
            "ensemble_lambda": config.ensemble_lambda,
            "batch_size": options.reward_batch_size,
            "start_timeout": options.reward_start_timeout,
        },
        "out": spec.out,
        "metrics_file": spec.metrics_file,
        "notes": notes,
    }


class OpenRLHFLauncher:
    """Submits a PPO step as OpenRLHF's Ray PPO (:class:`training.launch.base.Launcher`)."""

    name = "openrlhf"
    kinds = ("ppo",)  # OpenRLHF's Ray PPO: refused for other runs when they are created

    def __init__(self, ray_options: RayOptions, options: OpenRLHFOptions) -> None:
        self.ray = RayJobLauncher(ray_options)
        self.options = options

    def launch(self, spec_path: Path, *, env: dict[str, str]) -> RayJob:
        spec = StepSpec.read(spec_path)
        plan = build_plan(spec_path, self.options, self.ray.options.python)
        plan_path = spec_path.parent / PLAN_NAME
        plan_path.write_text(json.dumps(plan, indent=1))
        command = [self.ray.options.python, "-m", "training.launch.openrlhf", str(plan_path)]
        return self.ray.submit(command, spec=spec, env=env, kind="openrlhf-ppo")


def make_openrlhf_launcher(options: dict[str, Any]) -> OpenRLHFLauncher:
    return OpenRLHFLauncher(*split_options(options))


register_launcher("openrlhf", make_openrlhf_launcher)


# --- on the cluster: the job's entrypoint ------------------------------------------------


def node_address() -> str:
    """This node's address in the Ray cluster (what other nodes reach it at)."""
    try:
        from ray.util import get_node_ip_address

        return str(get_node_ip_address())
    except Exception:  # no ray here: the loopback serves a one-node cluster
        return "127.0.0.1"


class RewardServer:
    """``training.ml.reward_server`` as a child process of the job's entrypoint."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        command = [
            sys.executable,
            "-u",
            "-m",
            "training.ml.reward_server",
            "--reward",
            str(settings["reward"]),
            "--host",
            str(settings["bind"]),
            "--port",
            str(settings["port"]),
            "--max-length",
            str(settings["max_length"]),
            "--ensemble-lambda",
            str(settings["ensemble_lambda"]),
            "--batch-size",
            str(settings["batch_size"]),
        ]
        print(f"[preflab] reward server: {' '.join(command)}", flush=True)
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = ""

    def _pump(self) -> None:
        """The server's output, into the job's log and the queue (its first line names the
        port)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            print(f"[reward server] {line.rstrip()}", flush=True)
            self._lines.put(line)
        self._lines.put(None)

    def wait_ready(self) -> str:
        """The URL OpenRLHF posts to, once ``/health`` answers; RuntimeError when the server
        exits or does not come up in time."""
        deadline = time.monotonic() + float(self.settings["start_timeout"])
        port = None
        while port is None:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("the reward server did not start in time") from None
            if line is None:
                raise RuntimeError(f"the reward server exited ({self.process.wait()})")
            found = re.search(r"serving .* at http://[^\s:]+:(\d+)/", line)
            port = int(found.group(1)) if found else None
        host = self.settings["host"] or (
            "127.0.0.1" if self.settings["bind"] in ("127.0.0.1", "localhost") else node_address()
        )
        base = f"http://{host}:{port}"
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"the reward server at {base} does not answer") from None
                time.sleep(0.5)
        self.url = f"{base}/get_reward"
        return self.url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _write_done(plan: dict[str, Any], seconds: float) -> None:
    metrics = {"trainer": "openrlhf", "openrlhf_commit": plan["openrlhf_commit"]}
    metrics_file = Path(plan["metrics_file"])
    metrics_file.parent.mkdir(parents=True, exist_ok=True)
    with metrics_file.open("a") as out:
        event = {"event": "done", "metrics": {**metrics, "seconds": round(seconds, 1)}}
        out.write(json.dumps(event) + "\n")


def run_plan(plan: dict[str, Any]) -> int:
    """Reward server up, OpenRLHF run against it, server down; the trainer's exit status
    (1 when it exited 0 without leaving a model in the staging folder)."""
    started = time.monotonic()
    for note in plan["notes"]:
        print(f"[preflab] note: {note}", flush=True)
    server = RewardServer(plan["reward_server"])
    trainer: subprocess.Popen[bytes] | None = None

    def stop(signum: int, frame: FrameType | None) -> None:
        print(f"[preflab] signal {signum}: stopping the trainer and the reward server", flush=True)
        if trainer is not None and trainer.poll() is None:
            trainer.terminate()
        server.stop()
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        url = server.wait_ready()
        argv = [url if a == REWARD_URL else a for a in plan["trainer"]]
        print(f"[preflab] reward model at {url}; running {' '.join(argv)}", flush=True)
        trainer = subprocess.Popen(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        code = trainer.wait()
    except RuntimeError as exc:
        print(f"[preflab] {exc}", flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if trainer is not None and trainer.poll() is None:
            trainer.terminate()
            try:
                trainer.wait(timeout=30)
            except subprocess.TimeoutExpired:
                trainer.kill()
                trainer.wait()
        server.stop()
    if code != 0:
        print(f"[preflab] OpenRLHF exited with {code}", flush=True)
        return code
    if not (Path(plan["out"]) / "config.json").exists():
        print(f"[preflab] OpenRLHF exited 0 but saved no model in {plan['out']}", flush=True)
        return 1
    _write_done(plan, time.monotonic() - started)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run an OpenRLHF plan (a Ray job's entrypoint).")
    parser.add_argument("plan", type=Path, help=f"The plan ({PLAN_NAME}) the launcher wrote.")
    args = parser.parse_args(argv)
    return run_plan(json.loads(args.plan.read_text()))


if __name__ == "__main__":
    raise SystemExit(main())
