"""The PPO memory estimate (training/ml/memory_plan.py) for published model shapes, and the
estimate checked against a measured run on CPU.

1. A table for Qwen2-0.5B, Qwen2-1.5B, Llama-3-8B and a 7B (Llama-2-7B) shape, written
   here from their published configs (nothing is downloaded): full fine-tuning in mixed
   bf16 and in pure bf16, and LoRA (policy and critic, r=16), at one PPO setting; whether
   each fits one 80 GB (A100/H100) and one 141 GB (H200) device.
2. On CPU, a random-initialised Llama built locally (~36M parameters, fp32) trained by PPO
   for a few steps in a child process. Peak RSS is read as ``ru_maxrss`` of that child
   twice: right after importing torch, transformers and the trainer (the baseline: the
   interpreter and libraries, which the estimate does not model) and at the end; their
   difference is what the run added, printed against the estimate for the same config.
   The models are built and saved by another process first, so building them is not in it.

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

from training.ml.memory_plan import GIB, ModelShape, PlanInputs, estimate, table  # noqa: E402

SHAPES = {
    "Qwen2-0.5B": {
        "model_type": "qwen2",
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    },
    "Qwen2-1.5B": {
        "model_type": "qwen2",
        "hidden_size": 1536,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "intermediate_size": 8960,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    },
    "Llama-3-8B": {
        "model_type": "llama",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
    },
    "7B (Llama-2-7B)": {
        "model_type": "llama",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "intermediate_size": 11008,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
    },
}
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

CHILD = r"""
import json, resource, sys
import torch
torch.set_num_threads(1)
import transformers  # noqa: F401
from pathlib import Path
from typing import Any
from training.ml.ppo import parse_ppo_config, train_ppo
from training.ml.synthetic import prompt_rows
root = Path(sys.argv[1])
config = parse_ppo_config(json.loads(sys.argv[2]))
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
result = train_ppo(
    policy=root / "policy", reward=root / "policy",
    prompts=[r["prompt"] for r in prompt_rows(64, 1)], out=root / "out", config=config,
)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"baseline": baseline, "peak": peak, "plan": result["memory_plan"]}))
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
    for name, config in SHAPES.items():
        shape = ModelShape.from_config(config)
        for variant, extra in VARIANTS.items():
            inputs = PlanInputs(**{**SETTING, **extra})
            rows.append((f"{name} {variant}", estimate(shape, shape, inputs, overhead=GIB)))
    return table(rows, LIMITS)


def measure(steps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="memory-plan-") as tmp:
        root = Path(tmp)
        subprocess.run(
            [sys.executable, "-c", BUILD, str(root), *map(str, MEASURED.values())],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        config = MEASURED_CONFIG | {"total_episodes": steps * MEASURED_CONFIG["batch_size"]}
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(root), json.dumps(config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=os.environ | {"OMP_NUM_THREADS": "1"},
        )
        if done.returncode:
            raise SystemExit(f"the measured run failed:\n{done.stderr[-3000:]}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--steps", type=int, default=3, help="PPO steps of the measured run.")
    args = parser.parse_args()
    print("PPO memory estimate (GiB; peak = weights + optimizer + max(rollout, training)")
    print("transients + 1 GiB CUDA overhead), at: " + json.dumps(SETTING))
    print(estimate_table())
    print()
    report = measure(args.steps)
    plan = report["plan"]
    added = (report["peak"] - report["baseline"]) / GIB
    print(
        f"Measured on CPU: random Llama hidden {MEASURED['hidden']}, {MEASURED['layers']} layers"
        f", fp32, {args.steps} PPO steps of {json.dumps(MEASURED_CONFIG)}"
    )
    print(f"  baseline RSS after imports  {report['baseline'] / GIB:8.3f} GiB")
    print(f"  peak RSS of the run         {report['peak'] / GIB:8.3f} GiB")
    print(f"  added by the run (measured) {added:8.3f} GiB")
    print(f"  estimate (memory_plan)      {plan['peak_gib']:8.3f} GiB ({plan['phase']} peak)")
    print(f"  measured / estimate         {added / plan['peak_gib']:8.3f}")
    print("  estimate terms (GiB): " + json.dumps(plan["terms_gib"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
