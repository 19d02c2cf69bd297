"""The PPO memory estimate (training/ml/memory_plan.py) for published model shapes, and the
estimate checked against a measured run on CPU.

1. A table for Qwen2-0.5B, Qwen2-1.5B, Llama-3-8B and a 7B (Llama-2-7B) shape, written
   here from their published configs (nothing is downloaded): full fine-tuning in mixed
   bf16 and in pure bf16, and LoRA (policy and critic, r=16), at one PPO setting; whether
   each fits one 80 GB (A100/H100) and one 141 GB (H200) device.
2. On CPU, a random-initialised Llama built locally (~36M parameters, fp32) trained by PPO
   for a few steps in a child process (full; LoRA with checkpointing; accumulation and
   rollout chunks). Measured: the peak of the child's anonymous RSS (``RssAnon`` of
   /proc/self/status, sampled every 2 ms by a thread) over the PPO steps, minus its value
   right after importing torch, transformers and the trainer (the interpreter and libraries,
   which the estimate does not model); printed against the estimate for the same config.
   Anonymous, not total RSS: ``ru_maxrss`` (also printed) counts file-backed pages too, and
   transformers reads checkpoints through mmap, so it adds page cache the kernel can drop
   (and that has no counterpart on a GPU). The final save (a copy of the policy's tensors
   while serialising) is printed separately: it is outside the estimate. The models are
   built and saved by another process first, so building them is not in it.

    python bench/memory_plan.py [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.ml.memory_plan import (  # noqa: E402
    GIB,
    PUBLISHED_SHAPES,
    ModelShape,
    PlanInputs,
    estimate,
    table,
)

# one PPO setting for every row: 64 episodes per rollout, minibatches of 16 as 4
# micro-batches of 4, prompts up to 512 tokens, 256-token responses, rollout forward passes
# 8 episodes at a time, gradient checkpointing; the reward model has the policy's shape
SETTING: dict[str, Any] = {
    "batch_size": 64,
    "mini_batch_size": 16,
    "gradient_accumulation_steps": 4,
    "rollout_forward_batch_size": 8,
    "prompt_length": 512,
    "response_length": 256,
    "gradient_checkpointing": True,
}
VARIANTS: dict[str, dict[str, Any]] = {
    "full bf16": {"precision": "bf16"},
    "full bf16-pure": {"precision": "bf16-pure"},
    "LoRA r16 bf16": {"precision": "bf16", "lora_rank": 16, "critic_lora_rank": 16},
}
LIMITS = {"80GB": 80 * 10**9, "141GB": 141 * 10**9}

MEASURED = {"hidden": 768, "layers": 6, "heads": 12}
MEASURED_CONFIG: dict[str, Any] = {
    "total_episodes": 24,
    "batch_size": 8,
    "mini_batch_size": 4,
    "ppo_epochs": 1,
    "max_new_tokens": 16,
    "precision": "fp32",
    "learning_rate": 1e-6,  # a random model: memory is measured, not learning
    "kl_hard_stop": 1000.0,
}

MEASURED_VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "LoRA r16 policy + critic, checkpointing": {
        "lora_rank": 16,
        "critic_lora_rank": 16,
        "gradient_checkpointing": True,
    },
    "full, 2 accumulation steps, chunks of 4": {
        "gradient_accumulation_steps": 2,
        "rollout_forward_batch_size": 4,
    },
}

CHILD = r"""
import json, resource, sys, threading, time
import torch
torch.set_num_threads(1)
import transformers  # noqa: F401
from pathlib import Path
from training.ml.ppo import PPOTrainer, parse_ppo_config
from training.ml.synthetic import prompt_rows

def anon():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024

peak = {"anon": 0}
done = threading.Event()
def sample():
    while not done.is_set():
        peak["anon"] = max(peak["anon"], anon())
        time.sleep(0.002)

root = Path(sys.argv[1])
config = parse_ppo_config(json.loads(sys.argv[2]))
baseline = {"anon": anon(), "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
threading.Thread(target=sample, daemon=True).start()
trainer = PPOTrainer(
    policy_dir=root / "policy", reward_dir=root / "policy",
    prompts=[r["prompt"] for r in prompt_rows(64, 1)], config=config,
)
while trainer.step < config.steps:
    trainer.train_step(trainer.next_prompts())
training = max(peak["anon"], anon())
trainer.save_policy(root / "out")
done.set()
print(json.dumps({
    "baseline_anon": baseline["anon"],
    "training_anon": training,
    "with_save_anon": max(peak["anon"], anon()),
    "baseline_rss": baseline["rss"],
    "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "plan": trainer.memory_plan.as_dict(),
}))
"""

BUILD = r"""
import sys
from pathlib import Path
from typing import Any
from training.ml.synthetic import TOPICS, WORDS
from training.ml.tiny import build_causal_lm, build_tokenizer
root = Path(sys.argv[1])
corpus = [" ".join(WORDS)] * 5 + [" ".join(TOPICS)] * 5
tok = build_tokenizer(corpus, root / "tokenizer", vocab_size=300)
build_causal_lm(tok, root / "policy", hidden=int(sys.argv[2]), layers=int(sys.argv[3]),
                heads=int(sys.argv[4]))
"""


def estimate_table() -> str:
    rows = []
    for name, config in PUBLISHED_SHAPES.items():
        shape = ModelShape.from_config(config)
        for variant, extra in VARIANTS.items():
            inputs = PlanInputs(**{**SETTING, **extra})
            rows.append((f"{name} {variant}", estimate(shape, shape, inputs, overhead=GIB)))
    return table(rows, LIMITS)


def measure(steps: int) -> dict[str, dict[str, Any]]:
    """Each measured variant's baseline and peak RSS and the run's own estimate."""
    reports = {}
    with tempfile.TemporaryDirectory(prefix="memory-plan-") as tmp:
        root = Path(tmp)
        subprocess.run(
            [sys.executable, "-c", BUILD, str(root), *map(str, MEASURED.values())],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        for name, extra in MEASURED_VARIANTS.items():
            config = MEASURED_CONFIG | extra
            config["total_episodes"] = steps * config["batch_size"]
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(root), json.dumps(config)],
                cwd=REPO,
                capture_output=True,
                text=True,
                env=os.environ | {"OMP_NUM_THREADS": "1"},
            )
            if done.returncode:
                raise SystemExit(f"the measured run failed:\n{done.stderr[-3000:]}")
            reports[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return reports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--steps", type=int, default=3, help="PPO steps of each measured run.")
    args = parser.parse_args()
    print("PPO memory estimate (GiB; peak = weights + optimizer + max(rollout, training)")
    print("transients + 1 GiB CUDA overhead), at: " + json.dumps(SETTING))
    print(estimate_table())
    print()
    print(
        f"Measured on CPU: random Llama hidden {MEASURED['hidden']}, {MEASURED['layers']} "
        f"layers, fp32, {args.steps} PPO steps of {json.dumps(MEASURED_CONFIG)}."
    )
    print(
        "  measured = peak anonymous RSS of the child during the PPO steps minus the same after "
        "importing\n  torch, transformers and the trainer (GiB); +save: the peak including "
        "the final save;\n  ru_maxrss: the peak of all RSS including file-backed pages "
        "(mmapped checkpoints, libraries)"
    )
    print(
        f"  {'variant':<42}{'estimate':>9}{'measured':>9}{'ratio':>7}{'+save':>8}{'ru_maxrss':>11}"
    )
    for name, report in measure(args.steps).items():
        plan = report["plan"]
        measured = (report["training_anon"] - report["baseline_anon"]) / GIB
        with_save = (report["with_save_anon"] - report["baseline_anon"]) / GIB
        rss = (report["rss"] - report["baseline_rss"]) / GIB
        print(
            f"  {name:<42}{plan['peak_gib']:>9.3f}{measured:>9.3f}"
            f"{measured / plan['peak_gib']:>7.2f}{with_save:>8.3f}{rss:>11.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
