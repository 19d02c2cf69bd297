"""PPO (ours) vs RLOO vs GRPO (TRL) at an equal rollout budget on the synthetic gold-rule
task: a ~0.56M-parameter Llama answering in ≤ 24 tokens, one CPU thread per run.

Each algorithm optimizes the same reward model (trained on gold-labelled pairs); the gold
rule, which the policy never sees, measures what it really achieved. Prints, per algorithm
over the seeds, the final gold win rate against the starting policy and the KL from it
(both measured the same way for all: 512 fresh samples at temperature 0.7, KL = Σ_t log π −
log π_ref per response), episodes per second and, for PPO, the share of time in generation,
scoring and training; writes gold-reward and KL curves to PNG.

    python bench/policy_bench.py [--episodes 8192] [--seeds 0 1 2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.common import run_parallel  # noqa: E402

ALGORITHMS = ("ppo", "rloo", "grpo")
EVAL_PROMPTS = 512
SHAPE = {"hidden": 128, "layers": 3, "heads": 4, "pretrain_steps": 400}


def configs(episodes: int, seed: int) -> dict[str, dict[str, Any]]:
    """Each algorithm's settings at the same budget: ``episodes`` sampled responses of ≤ 24
    tokens at temperature 0.7, 64 responses per step."""
    shared = {"total_episodes": episodes, "batch_size": 64, "max_new_tokens": 24, "seed": seed}
    return {
        "ppo": shared
        | {
            "mini_batch_size": 32,
            "ppo_epochs": 1,
            "learning_rate": 1e-4,
            "kl_coef": 0.1,
            "auto_kl_coef": False,
            "target_kl": 3.0,
            "kl_horizon": 500,
        },
        "rloo": shared | {"num_generations": 8, "learning_rate": 2e-4, "beta": 0.05},
        "grpo": shared | {"num_generations": 8, "learning_rate": 2e-4, "beta": 0.04},
    }


def build_task(folder: Path) -> dict[str, Path]:
    """Starting policy, reward model and prompts, built once and reused."""
    from training.ml.reward import parse_config, train_reward_model
    from training.ml.synthetic import (
        PolicyShape,
        build_synthetic_policy,
        gold_preference_rows,
        prompt_rows,
    )

    paths = {
        "policy": folder / "policy",
        "reward": folder / "reward",
        "prompts": folder / "prompts.jsonl",
        "eval_prompts": folder / "eval_prompts.jsonl",
    }
    if not (paths["policy"] / "preflab_synthetic.json").exists():
        started = time.perf_counter()
        build_synthetic_policy(paths["policy"], shape=PolicyShape(**SHAPE))
        print(f"starting policy built in {time.perf_counter() - started:.0f} s", flush=True)
    if not (paths["reward"] / "preflab_metrics.json").exists():
        for name, rows in (
            ("train", gold_preference_rows(3000, 1)),
            ("test", gold_preference_rows(400, 2)),
        ):
            (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        metrics = train_reward_model(
            base=paths["policy"],
            train_file=folder / "train.jsonl",
            eval_file=folder / "test.jsonl",
            out=paths["reward"],
            config=parse_config(
                {"learning_rate": 1e-3, "epochs": 2, "batch_size": 32, "max_length": 64}
            ),
        )
        print(f"reward model: held-out accuracy {metrics['eval']['accuracy']}", flush=True)
    paths["prompts"].write_text("".join(json.dumps(r) + "\n" for r in prompt_rows(1024, 5)))
    paths["eval_prompts"].write_text(
        "".join(json.dumps(r) + "\n" for r in prompt_rows(EVAL_PROMPTS, 99))
    )
    return paths


def run_one(
    algorithm: str, seed: int, episodes: int, folder: Path, out: Path, override: dict[str, Any]
) -> dict[str, Any]:
    """Train one algorithm with one seed and measure it (in this process, one thread)."""
    import torch

    from training.ml import policy_trl
    from training.ml.monitor import Monitor
    from training.ml.policy_eval import sample_with_kl, win_rate
    from training.ml.ppo import parse_ppo_config, train_ppo
    from training.ml.prompts import load_prompts
    from training.ml.synthetic import gold_score

    torch.set_num_threads(1)
    paths = {k: folder / v for k, v in (("policy", "policy"), ("reward", "reward"))}
    prompts_file = folder / "prompts.jsonl"
    gold = Monitor("gold", lambda texts: [gold_score(t) for t in texts])
    config = configs(episodes, seed)[algorithm] | override.get(algorithm, {})
    policy_out = out / f"{algorithm}-{seed}"
    started = time.perf_counter()
    if algorithm == "ppo":
        metrics = train_ppo(
            policy=paths["policy"],
            reward=paths["reward"],
            prompts=load_prompts(prompts_file),
            out=policy_out,
            config=parse_ppo_config(config),
            monitors=[gold],
        )
    else:
        parse = (
            policy_trl.parse_grpo_config if algorithm == "grpo" else policy_trl.parse_rloo_config
        )
        train = policy_trl.train_grpo if algorithm == "grpo" else policy_trl.train_rloo
        metrics = train(
            policy=paths["policy"],
            reward=paths["reward"],
            prompts_file=prompts_file,
            out=policy_out,
            config=parse(config),  # type: ignore[arg-type]
            monitors=[gold],
        )
    wall = time.perf_counter() - started
    prompts = load_prompts(folder / "eval_prompts.jsonl")
    new = sample_with_kl(policy_out, prompts, reference=paths["policy"], seed=seed + 1000)
    old = sample_with_kl(paths["policy"], prompts, seed=seed + 2000)
    curve = [
        {
            "episodes": (i + 1) * config["batch_size"],
            "gold": h.get("gold"),
            "kl": _sequence_kl(algorithm, h),
            "proxy_reward": h.get("reward"),
        }
        for i, h in enumerate(metrics["history"])
    ]
    return {
        "algorithm": algorithm,
        "seed": seed,
        "config": config,
        "wall_seconds": round(wall, 2),
        "episodes": episodes,
        "episodes_per_second": round(episodes / wall, 2),
        "time_share": metrics.get("time_share"),
        "gold_win_rate": round(win_rate(new.texts, old.texts, gold_score), 4),
        "gold_start": round(statistics.fmean(gold_score(t) for t in old.texts), 4),
        "gold_final": round(statistics.fmean(gold_score(t) for t in new.texts), 4),
        "kl_final": round(statistics.fmean(new.kl), 3),
        "eos_rate_final": round(sum(new.finished) / len(new.finished), 3),
        "curve": curve,
    }


def _sequence_kl(algorithm: str, step: dict[str, Any]) -> float | None:
    """PPO logs KL per response; TRL logs it per token: × the mean completion length."""
    if algorithm == "ppo":
        return step.get("kl")
    kl, length = step.get("kl"), step.get("completion_length")
    return kl * length if kl is not None and length is not None else None


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, (gold_ax, kl_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for algorithm in ALGORITHMS:
        runs = [r for r in results if r["algorithm"] == algorithm]
        if not runs:
            continue
        steps = min(len(r["curve"]) for r in runs)
        x = [runs[0]["curve"][i]["episodes"] for i in range(steps)]
        for ax, key in ((gold_ax, "gold"), (kl_ax, "kl")):
            values = np.array(
                [
                    [
                        np.nan if r["curve"][i][key] is None else r["curve"][i][key]
                        for i in range(steps)
                    ]
                    for r in runs
                ]
            )
            mean, low, high = np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)
            (line,) = ax.plot(x, mean, label=f"{algorithm} ({len(runs)} seeds)")
            ax.fill_between(x, low, high, alpha=0.2, color=line.get_color())
    gold_ax.set(xlabel="episodes", ylabel="gold reward of the step's samples", title="Gold reward")
    kl_ax.set(xlabel="episodes", ylabel="KL from the start (nats per response)", title="KL")
    for ax in (gold_ax, kl_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def summarize(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"{'algorithm':9} {'seeds':>5} {'gold win rate':>17} {'KL (nats)':>15} "
        f"{'gold start→final':>18} {'episodes/s':>14}"
    ]
    for algorithm in ALGORITHMS:
        runs = [r for r in results if r["algorithm"] == algorithm]
        if not runs:
            continue

        def spread(key: str, runs: list[dict[str, Any]] = runs) -> str:
            values = [r[key] for r in runs]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.fmean(values):.3f} ± {sd:.3f}"

        start = statistics.fmean(r["gold_start"] for r in runs)
        final = statistics.fmean(r["gold_final"] for r in runs)
        lines.append(
            f"{algorithm:9} {len(runs):>5} {spread('gold_win_rate'):>17} {spread('kl_final'):>15} "
            f"{f'{start:+.3f} → {final:+.3f}':>18} {spread('episodes_per_second'):>14}"
        )
        for r in runs:
            share = r.get("time_share") or {}
            extra = " time: " + ", ".join(f"{k} {v:.0%}" for k, v in share.items()) if share else ""
            lines.append(
                f"    seed {r['seed']}: win {r['gold_win_rate']:.3f}, KL {r['kl_final']:.2f}, "
                f"{r['episodes_per_second']:.1f} eps/s, {r['wall_seconds']:.0f} s{extra}"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=8192)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--jobs", type=int, default=2, help="Runs in parallel (one thread each).")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "policy")
    parser.add_argument(
        "--override", type=json.loads, default={}, help='e.g. {"ppo": {"ppo_epochs": 2}}'
    )
    parser.add_argument("--one", nargs=2, metavar=("ALGORITHM", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    task = args.out / "task"
    task.mkdir(parents=True, exist_ok=True)
    if args.one:
        algorithm, seed = args.one[0], int(args.one[1])
        result = run_one(algorithm, seed, args.episodes, task, args.out / "policies", args.override)
        (args.out / f"result-{algorithm}-{seed}.json").write_text(json.dumps(result, indent=1))
        return 0
    build_task(task)
    child = [sys.executable, __file__, "--episodes", str(args.episodes), "--out", str(args.out)]
    child += ["--override", json.dumps(args.override)]
    failed = run_parallel(
        [
            (f"{algorithm}-{seed}", [*child, "--one", algorithm, str(seed)])
            for seed in args.seeds
            for algorithm in args.algorithms
        ],
        jobs=args.jobs,
        logs=args.out,
    )
    results = [  # every algorithm's latest result for these seeds (runs of one can be redone)
        json.loads((args.out / f"result-{a}-{s}.json").read_text())
        for s in args.seeds
        for a in ALGORITHMS
        if (args.out / f"result-{a}-{s}.json").exists()
    ]
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out / "policy_curves.png")
    print("\n".join(summarize(results)))
    print(f"curves: {args.out / 'policy_curves.png'}")
    if failed:
        print(f"failed runs: {', '.join(failed)} (see the logs in {args.out})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
