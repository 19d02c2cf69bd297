"""A GPU check of the training paths in bf16 on random-initialised Qwen2-0.5B- and
Qwen2-1.5B-shaped models (published shapes, built here: nothing is downloaded), in about
five minutes on one H200:

- reward model: Bradley–Terry steps (−log σ(r_chosen − r_rejected), the loss of TRL's
  RewardTrainer) in plain torch with fp32 master weights, so it runs without TRL;
- PPO (training/ml/ppo.py): steps with full fine-tuning and with LoRA (policy and critic);
- GRPO (TRL): one step through training/ml/policy_trl.py, skipped with a message when TRL is
  not installed;
- batched generation.

Each section prints tokens/s, peak CUDA memory (``max_memory_allocated``) against the
memory_plan estimate (PPO; for the reward model the weights + gradients + Adam + masters
part), and the bf16 path's loss values (finite, and the reward loss falling on a fixed
batch). A section that fails prints FAILED with the error and the rest still run; the
exit status is 1 if any failed. ``--tiny`` runs the same script on CPU with tiny shapes in
fp32 (what CI can run).

    python bench/gpu_check.py [--tiny] [--budget-seconds 420]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from training.ml.memory_plan import GIB, PUBLISHED_SHAPES, ModelShape  # noqa: E402

QWEN2_SHAPES: dict[str, dict[str, Any]] = {
    name: {k: v for k, v in PUBLISHED_SHAPES[name].items() if k != "model_type"}
    for name in ("Qwen2-0.5B", "Qwen2-1.5B")
}
TINY_SHAPES: dict[str, dict[str, Any]] = {
    "tiny-qwen2": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "vocab_size": 300,
        "tie_word_embeddings": True,
    },
}


class Check:
    """Settings of one run of the script (GPU or ``--tiny``)."""

    def __init__(self, tiny: bool, budget: float) -> None:
        self.tiny = tiny
        self.device = "cpu" if tiny else "cuda"
        self.dtype = torch.float32 if tiny else torch.bfloat16
        self.precision = "fp32" if tiny else "bf16"
        self.shapes = TINY_SHAPES if tiny else QWEN2_SHAPES
        self.reward_batch, self.reward_length, self.reward_steps = (
            (4, 32, 4) if tiny else (8, 512, 5)
        )
        self.ppo = {
            "batch_size": 8 if tiny else 32,
            "mini_batch_size": 4 if tiny else 16,
            "gradient_accumulation_steps": 2,
            "rollout_forward_batch_size": 4 if tiny else 16,
            "max_new_tokens": 8 if tiny else 96,
            "ppo_epochs": 1,
            "learning_rate": 1e-6,  # random models: throughput and memory, not learning
            "kl_hard_stop": 1e6,
            "precision": self.precision,
        }
        self.ppo_steps = 2
        self.generation_batch, self.generation_tokens = (8, 16) if tiny else (64, 256)
        self.deadline = time.monotonic() + budget
        self.failed: list[str] = []

    def reset_peak(self) -> None:
        if not self.tiny:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak(self) -> str:
        if self.tiny:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            return f"process peak RSS {rss / GIB:.2f} GiB (CPU: not per section)"
        torch.cuda.synchronize()
        return (
            f"peak CUDA allocated {torch.cuda.max_memory_allocated() / GIB:.2f} GiB, "
            f"reserved {torch.cuda.max_memory_reserved() / GIB:.2f} GiB"
        )

    def peak_bytes(self) -> int | None:
        return None if self.tiny else int(torch.cuda.max_memory_allocated())


def section(check: Check, name: str, run: Callable[[], None]) -> None:
    if time.monotonic() > check.deadline:
        print(f"[{name}] SKIPPED: past the time budget", flush=True)
        return
    started = time.perf_counter()
    print(f"[{name}] ...", flush=True)
    try:
        run()
    except Exception as exc:  # every section reports; the rest still run
        check.failed.append(name)
        print(f"[{name}] FAILED: {type(exc).__name__}: {exc}", flush=True)
        traceback.print_exc(limit=4)
    print(f"[{name}] {time.perf_counter() - started:.1f} s", flush=True)


def build_model(check: Check, root: Path, name: str, tokenizer_dir: Path) -> Path:
    """A random Qwen2 of the named shape saved (with the tokenizer) in the run's dtype."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen2Config(
        **check.shapes[name],
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        max_position_embeddings=4096,
    )
    torch.manual_seed(0)
    with torch.device(check.device):
        model: Any = Qwen2ForCausalLM(config)
        model = model.to(check.dtype)
    out = root / name
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    if not check.tiny:
        torch.cuda.empty_cache()
    return out


def reward_steps(check: Check, model_dir: Path) -> None:
    """Bradley–Terry steps on one fixed random batch of pairs: the loss must fall."""
    from transformers import AutoModelForSequenceClassification

    from training.ml.ppo import TrainedParameters

    check.reset_peak()
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=1, dtype=check.dtype
    ).to(check.device)
    model.config.pad_token_id = 0
    optimizer = TrainedParameters(
        list(model.parameters()), 1e-5, master_weights=check.precision == "bf16"
    )
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    shape = (check.reward_batch, check.reward_length)
    chosen = torch.randint(8, vocab, shape, generator=generator).to(check.device)
    rejected = torch.randint(8, vocab, shape, generator=generator).to(check.device)
    losses = []
    model.train()
    started = time.perf_counter()
    for _ in range(check.reward_steps):
        rewards = model(input_ids=torch.cat([chosen, rejected])).logits[:, 0].float()
        loss = -torch.nn.functional.logsigmoid(rewards[: shape[0]] - rewards[shape[0] :]).mean()
        loss.backward()
        optimizer.step(1.0)
        losses.append(loss.item())
    if not check.tiny:
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    tokens = 2 * shape[0] * shape[1] * check.reward_steps
    params = ModelShape.from_config(model.config).scalar_head_parameters()
    per_param = 2 + 4 + 8 + 4 if check.precision == "bf16" else 4 + 4 + 8
    print(f"  losses {[round(x, 4) for x in losses]}")
    print(f"  {tokens / wall:,.0f} tokens/s (forward + backward, {shape[0]} pairs × {shape[1]})")
    print(
        f"  {check.peak()}; estimate of weights + grads + Adam"
        f"{' + fp32 masters' if per_param == 18 else ''}: {params * per_param / 2**20:,.1f} MiB"
        " (activations not included)"
    )
    if not all(math.isfinite(x) for x in losses):
        raise RuntimeError("non-finite reward loss")
    if not losses[-1] < losses[0]:
        raise RuntimeError("the reward loss did not fall on a fixed batch")
    del model, optimizer


def ppo_steps(check: Check, model_dir: Path, prompts: list[Any], lora: bool) -> None:
    from training.ml.ppo import PPOTrainer, parse_ppo_config

    raw = check.ppo | ({"lora_rank": 16, "critic_lora_rank": 16} if lora else {})
    raw["total_episodes"] = raw["batch_size"] * check.ppo_steps
    config = parse_ppo_config(raw)
    check.reset_peak()
    trainer = PPOTrainer(policy_dir=model_dir, reward_dir=model_dir, prompts=prompts, config=config)
    plan = trainer.memory_plan
    started = time.perf_counter()
    generated = 0
    for _ in range(check.ppo_steps):
        metrics = trainer.train_step(trainer.next_prompts())
        generated += int(metrics["response_length"] * config.batch_size)
        shown = {k: round(metrics[k], 5) for k in ("policy_loss", "value_loss", "kl", "entropy")}
        print(f"  step {json.dumps(shown)}")
        values = [metrics[k] for k in ("policy_loss", "value_loss", "kl")]
        if not all(math.isfinite(v) for v in values):
            raise RuntimeError("non-finite PPO loss")
    if not check.tiny:
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    share = {
        k: round(v / max(sum(trainer.timings.values()), 1e-9), 3)
        for k, v in trainer.timings.items()
    }
    print(f"  {generated / wall:,.0f} episode tokens/s over {check.ppo_steps} steps; time {share}")
    measured = check.peak_bytes()
    ratio = f", measured/estimate {measured / plan.peak:.2f}" if measured else ""
    print(f"  {check.peak()}; memory_plan peak {plan.peak / 2**20:,.1f} MiB{ratio}")
    print(f"  {plan.summary()}")
    del trainer


def grpo_step(check: Check, model_dir: Path, root: Path, prompts: list[Any]) -> None:
    try:
        import trl  # noqa: F401
    except ImportError:
        print("  SKIPPED: TRL is not installed here (carry its wheel to run GRPO)")
        return
    from training.ml.policy_trl import parse_grpo_config, train_grpo

    prompts_file = root / "grpo-prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts[:16]))
    config = parse_grpo_config(
        {
            "total_episodes": 8,
            "batch_size": 8,
            "num_generations": 4,
            "max_new_tokens": check.ppo["max_new_tokens"],
            "precision": check.precision,
            "checkpoint_steps": 0,
        }
    )
    check.reset_peak()
    started = time.perf_counter()
    result = train_grpo(
        policy=model_dir,
        reward=model_dir,
        prompts_file=prompts_file,
        out=root / "grpo",
        config=config,
    )
    wall = time.perf_counter() - started
    summary = {k: v for k, v in result.items() if k != "history"}
    print(f"  {json.dumps(summary, default=str)[:400]}")
    print(f"  {8 * config.max_new_tokens / wall:,.0f} completion tokens/s (upper bound)")
    print(f"  {check.peak()}")


def generation(check: Check, model_dir: Path, prompts: list[Any]) -> None:
    from transformers import AutoModelForCausalLM

    from training.ml.prompts import encode_prompts
    from training.ml.tokenization import load_tokenizer

    check.reset_peak()
    tokenizer = load_tokenizer(model_dir, padding_side="left")
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=check.dtype)
    model = model.to(check.device)
    model.eval()
    encoded = encode_prompts(tokenizer, prompts[: check.generation_batch])
    batch = {k: v.to(check.device) for k, v in encoded.items()}
    started = time.perf_counter()
    with torch.no_grad():
        output = model.generate(
            **batch,
            do_sample=True,
            temperature=0.7,
            top_k=0,
            max_new_tokens=check.generation_tokens,
            min_new_tokens=check.generation_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
    if not check.tiny:
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    new = (output.shape[1] - batch["input_ids"].shape[1]) * output.shape[0]
    print(
        f"  {new:,} tokens in {wall:.2f} s: {new / wall:,.0f} tokens/s "
        f"(batch {output.shape[0]}, {check.generation_tokens} new tokens each)"
    )
    print(f"  {check.peak()}")
    del model


def run_sections(check: Check, name: str, model_dir: Path, prompts: list[Any]) -> None:
    root = model_dir.parent
    section(check, f"{name} reward model", lambda: reward_steps(check, model_dir))
    section(check, f"{name} PPO full", lambda: ppo_steps(check, model_dir, prompts, False))
    section(check, f"{name} PPO LoRA", lambda: ppo_steps(check, model_dir, prompts, True))
    section(check, f"{name} GRPO", lambda: grpo_step(check, model_dir, root, prompts))
    section(check, f"{name} generation", lambda: generation(check, model_dir, prompts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny shapes, fp32.")
    parser.add_argument(
        "--budget-seconds", type=float, default=420.0, help="Skip sections started after this."
    )
    args = parser.parse_args()
    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA device: run with --tiny on CPU")
        return 2
    check = Check(args.tiny, args.budget_seconds)
    if args.tiny:
        torch.set_num_threads(1)
    else:
        print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}")
    import transformers

    print(f"transformers {transformers.__version__}; precision {check.precision}")
    from training.ml.synthetic import TOPICS, WORDS, prompt_rows
    from training.ml.tiny import build_tokenizer

    prompts = [r["prompt"] for r in prompt_rows(256, 7)]
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        root = Path(tmp)
        corpus = [" ".join(WORDS)] * 5 + [" ".join(TOPICS)] * 5
        tokenizer_dir = build_tokenizer(corpus, root / "tokenizer", vocab_size=300)
        for name in check.shapes:
            run_sections(check, name, build_model(check, root, name, tokenizer_dir), prompts)
    print("FAILED: " + ", ".join(check.failed) if check.failed else "all sections passed")
    return 1 if check.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
