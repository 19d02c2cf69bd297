"""PPO (ours) in one process vs data-parallel over N processes on the synthetic task, at the
same config (the step's batch is split over the processes): episodes per second and the
wall time of the training loop (models loaded beforehand are not counted), one CPU thread
per process.

    python bench/ppo_ddp_bench.py [--processes 2] [--episodes 256] [--repeats 2]

The N-process runs go through ``accelerate launch --multi_gpu --num_processes N`` with
``CUDA_VISIBLE_DEVICES=''`` (CPU processes, gloo): ``accelerate launch --cpu`` starts a
single process whatever ``--num_processes`` says. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHAPE = {"hidden": 128, "layers": 3, "heads": 4, "pretrain_steps": 100}
CONFIG = {
    "batch_size": 64,
    "mini_batch_size": 32,
    "ppo_epochs": 1,
    "max_new_tokens": 24,
    "precision": "fp32",
    "kl_horizon": 500,
}


def build(root: Path) -> dict[str, Path]:
    """The synthetic policy, a reward model on its backbone (seeded head), prompts."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.ml.synthetic import PolicyShape, build_synthetic_policy, prompt_rows

    policy = build_synthetic_policy(root / "policy", shape=PolicyShape(**SHAPE))
    torch.manual_seed(1)
    reward = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1)
    reward.save_pretrained(root / "reward")
    AutoTokenizer.from_pretrained(policy).save_pretrained(root / "reward")
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in prompt_rows(256, 3)))
    return {"policy": policy, "reward": root / "reward", "prompts": prompts}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(task: dict[str, Path], out: Path, config: Path, processes: int) -> dict[str, Any]:
    module = [
        "-m",
        "training.ml.ppo",
        *("--policy", str(task["policy"]), "--reward", str(task["reward"])),
        *("--prompts", str(task["prompts"]), "--out", str(out), "--config", str(config)),
    ]
    if processes == 1:
        command = [sys.executable, *module]
    else:
        command = [
            sys.executable,
            *("-m", "accelerate.commands.launch", "--multi_gpu"),
            *("--num_processes", str(processes), "--num_machines", "1"),
            *("--mixed_precision", "no", "--dynamo_backend", "no"),
            *("--main_process_port", str(free_port())),
            *module,
        ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    metrics = json.loads((out / "preflab_metrics.json").read_text())
    return {
        "processes": metrics["processes"],
        "episodes_per_second": metrics["episodes_per_second"],
        "wall_seconds": metrics["wall_seconds"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        task = build(root)
        config = root / "config.json"
        config.write_text(json.dumps(CONFIG | {"total_episodes": args.episodes}))
        runs: dict[int, list[dict[str, Any]]] = {1: [], args.processes: []}
        for repeat in range(args.repeats):  # alternated: load drifts hit both alike
            for processes in runs:
                out = root / f"out-{processes}-{repeat}"
                runs[processes].append(run(task, out, config, processes))
    summary = {
        str(n): {
            "episodes_per_second": statistics.median(r["episodes_per_second"] for r in found),
            "wall_seconds": statistics.median(r["wall_seconds"] for r in found),
            "runs": found,
        }
        for n, found in runs.items()
    }
    one, many = (summary[str(n)]["episodes_per_second"] for n in runs)
    print(
        json.dumps(
            {
                "config": CONFIG | {"total_episodes": args.episodes},
                "shape": SHAPE,
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
                "speedup": round(many / one, 2),
                "by_processes": summary,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
