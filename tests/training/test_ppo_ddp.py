"""PPO data-parallel under ``accelerate launch`` with two real CPU processes (gloo): the CLI
trains, rank 0 alone reports and saves, the ranks end with identical weights and β (and
drift apart when the gradient all-reduce is switched off), a cancel on rank 0 stops both
ranks at the same step, and a two-process run resumes from its checkpoint (with a LoRA
policy and critic, gradient accumulation and gradient checkpointing).

``accelerate launch --cpu`` starts a single process whatever ``--num_processes`` says
(accelerate 1.15 fans CPU processes out only under MPI): on a host without CUDA,
``--multi_gpu`` is what starts one process per rank (torch's elastic launcher, gloo here).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from training.ml.ppo import CHECKSUMS_ENV, NO_GRAD_SYNC_ENV
from training.ml.ppo_math import AdaptiveKLController
from training.ml.synthetic import prompt_rows

REPO = Path(__file__).resolve().parents[2]

CONFIG: dict[str, Any] = {
    "total_episodes": 24,
    "batch_size": 8,
    "mini_batch_size": 4,
    "ppo_epochs": 2,
    "max_new_tokens": 6,
    "precision": "fp32",
    "checkpoint_steps": 1,
    "kl_horizon": 64,
}

MEMORY_FEATURES: dict[str, Any] = {
    "lora_rank": 4,
    "critic_lora_rank": 2,
    "gradient_accumulation_steps": 2,
    "gradient_checkpointing": True,
}


@pytest.fixture(scope="module")
def task(policy_files: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny synthetic policy, a reward model on its backbone with a seeded score head
    saved beside it, and a prompt file."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    root = tmp_path_factory.mktemp("ppo-ddp")
    torch.manual_seed(1)
    reward = AutoModelForSequenceClassification.from_pretrained(policy_files, num_labels=1)
    reward.config.pad_token_id = reward.config.pad_token_id or 0
    reward.save_pretrained(root / "reward")
    AutoTokenizer.from_pretrained(policy_files).save_pretrained(root / "reward")
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in prompt_rows(32, 3)))
    return {"root": root, "policy": policy_files, "reward": root / "reward", "prompts": prompts}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(
    module_args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``accelerate launch`` of two CPU processes (gloo) on a free port."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        *module_args,
    ]
    full_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",  # CPU processes even on a CUDA host
        **(env or {}),
    }
    done = subprocess.run(
        command, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


def cli(task: dict[str, Path], out: Path, config: dict[str, Any], **extra: str) -> list[str]:
    config_file = out.parent / f"{out.name}-config.json"
    config_file.write_text(json.dumps(config))
    args = [
        "training.ml.ppo",
        "--policy",
        str(task["policy"]),
        "--reward",
        str(task["reward"]),
        "--prompts",
        str(task["prompts"]),
        "--out",
        str(out),
        "--config",
        str(config_file),
    ]
    for key, value in extra.items():
        args += [f"--{key}", value]
    return args


def fingerprints(folder: Path) -> list[dict[str, Any]]:
    found = [json.loads((folder / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [f["rank"] for f in found] == [0, 1] and all(f["processes"] == 2 for f in found)
    return found


def same_but_rank(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "rank"} == {
        k: v for k, v in b.items() if k != "rank"
    }


def test_the_cli_trains_data_parallel_and_the_ranks_agree(
    task: dict[str, Path], tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    out, sums = tmp_path / "out", tmp_path / "sums"
    done = launch(
        cli(task, out, CONFIG, checkpoints=str(tmp_path / "ck")), {CHECKSUMS_ENV: str(sums)}
    )
    # rank 0 alone reports each step and the summary
    steps = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"step"')]
    assert [s["step"] for s in steps] == [1, 2, 3]
    summary = json.loads(done.stdout[done.stdout.index("{\n") :])["metrics"]
    assert summary["processes"] == 2 and summary["steps"] == 3 and summary["episodes"] == 24
    # one model, saved once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "out", "out-config.json", "sums"]
    saved = json.loads((out / "preflab_metrics.json").read_text())
    assert [h["step"] for h in saved["history"]] == [1, 2, 3]
    assert [h["episodes"] for h in saved["history"]] == [8, 16, 24]
    # the β rank 0 reported (rounded to 4 places) is the one on record
    assert [s["kl_coef"] for s in steps] == [round(h["kl_coef"], 4) for h in saved["history"]]
    # identical weights, β and reward statistics on both ranks: the gradients were averaged
    rank0, rank1 = fingerprints(sums)
    assert same_but_rank(rank0, rank1), (rank0, rank1)
    assert rank0["step"] == 3
    trained, start = (
        load_file(out / "model.safetensors"),
        load_file(task["policy"] / "model.safetensors"),
    )
    assert any(not torch.equal(trained[k], start[k]) for k in start)  # the policy moved
    # the checkpoint holds both ranks' sampling RNG (different streams: own rollouts)
    state = torch.load(tmp_path / "ck" / "ppo-state.pt", weights_only=False)
    assert state["step"] == 3 and state["processes"] == 2
    assert not torch.equal(state["torch_rng_ranks"][0], state["torch_rng_ranks"][1])
    assert not (tmp_path / "ck" / "ppo-state.pt.partial").exists()


def test_without_the_gradient_all_reduce_the_ranks_drift_apart(
    task: dict[str, Path], tmp_path: Path
) -> None:
    """The control of the test above: the same run with the all-reduce switched off ends with
    different weights on the two ranks (each trained on its own rollouts), so equal checksums
    there are the synchronisation's doing. β and the reward statistics are still the same:
    they come from the reduced KL and the gathered scores."""
    sums = tmp_path / "sums"
    done = launch(
        cli(task, tmp_path / "out", CONFIG), {CHECKSUMS_ENV: str(sums), NO_GRAD_SYNC_ENV: "1"}
    )
    assert "gradients are NOT averaged" in done.stderr
    rank0, rank1 = fingerprints(sums)
    assert rank0["policy"] != rank1["policy"]
    assert rank0["value"] != rank1["value"]
    assert rank0["kl_coef"] == rank1["kl_coef"]
    assert rank0["reward_mean"] == rank1["reward_mean"]


def entry(task: dict[str, Path], tmp_path: Path, name: str, stop_at: int | None) -> Path:
    record = tmp_path / name
    spec = {
        "policy": str(task["policy"]),
        "reward": str(task["reward"]),
        "prompts": str(task["prompts"]),
        "out": str(tmp_path / f"{name}-out"),
        # with the memory features: LoRA policy and critic, accumulation, checkpointing
        "config": CONFIG | MEMORY_FEATURES | {"total_episodes": 32},
        "checkpoints": str(tmp_path / "ck"),
        "record": str(record),
        "stop_at": stop_at,
    }
    spec_file = tmp_path / f"{name}.json"
    spec_file.write_text(json.dumps(spec))
    launch(["tests.training.ppo_ddp_entry", str(spec_file)], {CHECKSUMS_ENV: str(record)})
    return record


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_cancel_on_rank_0_stops_every_rank_and_the_run_resumes_on_two_processes(
    task: dict[str, Path], tmp_path: Path
) -> None:
    first = entry(task, tmp_path, "first", stop_at=2)
    # hooks and monitors run on rank 0 only, the monitor over both ranks' responses
    assert [c["step"] for c in lines(first / "on-step-rank-0.jsonl")] == [1, 2]
    assert [m["texts"] for m in lines(first / "monitor-rank-0.jsonl")] == [8, 8]
    assert len((first / "on-checkpoint-rank-0.txt").read_text().splitlines()) == 2
    assert not list(first.glob("*-rank-1.jsonl")) and not list(first.glob("*-rank-1.txt"))
    # the same result on both ranks, stopped after the same step
    result0, result1 = (json.loads((first / f"result-rank-{r}.json").read_text()) for r in (0, 1))
    assert result0 == result1
    assert result0["steps"] == 2 and result0["stopped_early"] and not result0["resumed"]
    on_step = lines(first / "on-step-rank-0.jsonl")
    assert [c["metrics"] for c in on_step] == result0["history"]  # on_step saw global metrics
    assert "words" in result0["history"][0]
    stopped0, stopped1 = fingerprints(first)
    assert stopped0["step"] == stopped1["step"] == 2 and same_but_rank(stopped0, stopped1)

    second = entry(task, tmp_path, "second", stop_at=None)
    result0, result1 = (json.loads((second / f"result-rank-{r}.json").read_text()) for r in (0, 1))
    assert result0 == result1
    assert result0["resumed"] and result0["steps"] == 4 and not result0["stopped_early"]
    assert [h["step"] for h in result0["history"]] == [3, 4]
    assert [c["step"] for c in lines(second / "on-step-rank-0.jsonl")] == [3, 4]
    # β went on from the checkpoint's: step 2's β, updated by step 2's (global) KL
    before = on_step[-1]["metrics"]
    controller = AdaptiveKLController(before["kl_coef"], 3.0, CONFIG["kl_horizon"])
    controller.update(before["kl"], CONFIG["batch_size"])
    assert result0["history"][0]["kl_coef"] == controller.value
    resumed0, resumed1 = fingerprints(second)
    assert resumed0["step"] == 4 and same_but_rank(resumed0, resumed1)
    assert (tmp_path / "second-out" / "model.safetensors").exists()


def _gradient_check(rank: int, port: int, task: dict[str, Path], out: str) -> None:
    """One rank of the gradient check (a spawned process)."""
    from dataclasses import fields

    from training.ml import distributed
    from training.ml.ppo import PPOTrainer, Rollout, parse_ppo_config, trainable
    from training.ml.prompts import load_prompts

    torch.set_num_threads(1)
    os.environ |= {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    config = parse_ppo_config(
        {"total_episodes": 8, "batch_size": 8, "mini_batch_size": 8, "max_new_tokens": 6}
    )
    prompts = load_prompts(task["prompts"])[:8]
    trainer = PPOTrainer(
        policy_dir=task["policy"], reward_dir=task["reward"], prompts=prompts, config=config
    )
    # one rollout of the whole batch, rank 0's, on both ranks
    whole = distributed.broadcast_object(trainer.rollout(prompts))
    whole.mask[:4, -3:] = 0  # rank 0's half holds fewer response tokens than rank 1's
    parameters = [*trainable(trainer.policy), *trainable(trainer.value)]
    advantages = torch.linspace(-1, 1, whole.mask.numel()).view_as(whole.mask) * whole.mask
    returns = advantages.flip(1)
    everything = torch.arange(8)
    one = torch.tensor(1.0)

    # one process on the whole minibatch
    trainer._micro_batch(whole, everything, advantages, returns, True, one)
    single = [p.grad.clone() for p in parameters]  # type: ignore[union-attr]
    for p in parameters:
        p.grad = None

    # this rank's half, its loss scaled by its token share, the gradients averaged
    rows = slice(4 * rank, 4 * rank + 4)
    half = Rollout(
        **{
            f.name: (
                getattr(whole, f.name)[rows]
                if isinstance(getattr(whole, f.name), torch.Tensor | list)
                else getattr(whole, f.name)
            )
            for f in fields(Rollout)
        }
    )
    share = trainer._token_share(half.mask.sum())
    assert share is not None
    found: dict[str, Any] = {"tokens": distributed.all_gather(half.mask.sum().view(1)).tolist()}
    for name, weight in (("weighted", share), ("unweighted", 1.0)):
        trainer._micro_batch(
            half, torch.arange(4), advantages[rows], returns[rows], True, torch.tensor(weight)
        )
        distributed.all_reduce_gradients(parameters)
        found[name] = max(
            (p.grad - s).abs().max().item() / max(s.abs().max().item(), 1e-12)
            for p, s in zip(parameters, single, strict=True)
            if p.grad is not None
        )
        for p in parameters:
            p.grad = None
    Path(out, f"rank-{rank}.json").write_text(json.dumps(found))
    distributed.shutdown()


def test_the_averaged_gradients_are_those_of_the_whole_minibatch(
    task: dict[str, Path], tmp_path: Path
) -> None:
    """Two processes (spawned, gloo), each with half of one rollout: the gradients of the
    policy and value model, averaged over the ranks, equal those one process computes on the
    whole minibatch (each rank's loss weighted by its share of the minibatch's tokens; the
    plain mean of the two ranks' token means is not, when the halves hold unequal tokens)."""
    import torch.multiprocessing as mp

    mp.spawn(_gradient_check, args=(free_port(), task, str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        found = json.loads((tmp_path / f"rank-{rank}.json").read_text())
        assert found["tokens"] == [12.0, 24.0]
        assert found["weighted"] < 1e-5, found
        assert found["unweighted"] > 1e-2, found


def test_the_helpers_read_the_launchers_variables_before_any_process_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from training.ml import distributed

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.world() == distributed.World(rank=0, size=1, local_rank=0)
    assert distributed.is_main_process() and not distributed.world().distributed
    # one process: the collectives hand back their input
    assert distributed.broadcast_flag(True) is True
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    assert distributed.all_reduce_mean([2.0, 4.0]) == [2.0, 4.0]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.world() == distributed.World(rank=1, size=2, local_rank=1)
    assert not distributed.is_main_process()


def test_each_process_takes_an_equal_share_of_the_step_or_the_run_is_refused() -> None:
    from training.ml.config import ConfigError
    from training.ml.ppo import local_batch_sizes, parse_ppo_config

    config = parse_ppo_config(CONFIG | {"gradient_accumulation_steps": 2})
    assert local_batch_sizes(config, 1) == (8, 4)
    assert local_batch_sizes(config, 2) == (4, 2)
    with pytest.raises(ConfigError) as caught:
        local_batch_sizes(config, 3)  # 8 episodes, minibatches of 4 with 2 micro-batches
    assert set(caught.value.fields) == {"batch_size", "mini_batch_size"}
    with pytest.raises(ConfigError) as caught:
        local_batch_sizes(config, 4)  # 2 episodes each, but 2 micro-batches of 1 per rank
    assert set(caught.value.fields) == {"mini_batch_size"}
