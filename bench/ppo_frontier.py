"""Does our PPO at its defaults hold its KL target, and is it on the gold-vs-KL frontier?

Two synthetic tasks (``training.ml.synthetic.TASKS``): *gold-words* (the reward model learns
the gold rule from exact labels) and *nature-length* (another gold rule; the reward model's
labels carry a length bias and 10 % noise, so over-optimization has a trap to fall into).
Same starting policy (a ~0.56M-parameter Llama answering in ≤ 24 tokens), same budget per run.

For each task and seed:

- **ours**: PPO with every default, only ``target_kl`` set (1, 2, 3, 4, 5 nats);
- **fixed β**: the same defaults with the adaptive controller off and β fixed (a sweep),
  which traces the frontier of gold win rate against KL;
- **TRL settings**: the settings of TRL's last PPOTrainer (1.12) run with our PPO — fixed
  β 0.05, k1, one minibatch per rollout, 4 epochs, raw (unnormalized) scores, no critic
  warm-up — as a reference point.

Each trained policy is measured the same way: 512 fresh prompts sampled at temperature 0.7;
gold win rate against the starting policy's samples (ties ½) and KL = Σ_t log π − log π_ref
per response. Prints, per task, each target's final KL (mean ± sd over seeds, and whether
it is within ±20 % of the target), its gold win rate, and the fixed-β frontier's win rate at
the same KL (linear between the sweep's points, seed means); then the TRL-settings point.

    python bench/ppo_frontier.py [--episodes 2048] [--seeds 0 1 2] [--jobs 2]
        [--tasks gold-words nature-length] [--targets 1 2 3 4 5] [--betas …]

Runs already measured (``var/bench/frontier/result-*.json``) are reused; ``--fresh`` redoes
them. One thread per run.
"""

from __future__ import annotations

import argparse
import itertools
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

EVAL_PROMPTS = 512
SHAPE = {"hidden": 128, "layers": 3, "heads": 4, "pretrain_steps": 400}
TARGETS = (1.0, 2.0, 3.0, 4.0, 5.0)
BETAS = (0.15, 0.25, 0.4, 0.6, 1.0, 1.6)
TRL_SETTINGS: dict[str, Any] = {
    "adaptive_kl": False,
    "kl_coef": 0.05,
    "kl_estimator": "k1",
    "ppo_epochs": 4,
    "normalize_reward": False,
    "reward_clip": 0.0,
    "value_warmup_steps": 0,
    "whiten_advantages": True,
    "cliprange": 0.2,
    "cliprange_value": 0.2,
    "vf_coef": 0.1,
    "gamma": 1.0,
    "lam": 0.95,
    "missing_eos_penalty": 1.0,
    "temperature": 0.7,
}
KL_BAND = 0.2  # ours must end within ±20 % of its target


def run_name(task: str, kind: str, value: float, seed: int) -> str:
    return f"{task}-{kind}-{value:g}-s{seed}"


def run_config(kind: str, value: float, seed: int, episodes: int) -> dict[str, Any]:
    """The PPO config of one run: defaults everywhere but what the run varies."""
    base: dict[str, Any] = {"total_episodes": episodes, "seed": seed}
    if kind == "ours":
        return base | {"target_kl": value}
    if kind == "fixed":
        return base | {"adaptive_kl": False, "kl_coef": value}
    if kind == "trl":
        from training.ml.ppo import PPOConfig

        return base | TRL_SETTINGS | {"mini_batch_size": PPOConfig().batch_size}
    raise ValueError(kind)


def build_task(folder: Path, tasks: list[str]) -> None:
    """The shared starting policy, each task's reward model, the prompts: built once."""
    from training.ml.reward import parse_config, train_reward_model
    from training.ml.synthetic import TASKS, PolicyShape, build_synthetic_policy, prompt_rows

    policy = folder / "policy"
    if not (policy / "preflab_synthetic.json").exists():
        started = time.perf_counter()
        build_synthetic_policy(policy, shape=PolicyShape(**SHAPE))
        print(f"starting policy built in {time.perf_counter() - started:.0f} s", flush=True)
    for name in tasks:
        reward = folder / f"reward-{name}"
        if (reward / "preflab_metrics.json").exists():
            continue
        task = TASKS[name]
        for split, rows in (
            ("train", task.preference_rows(3000, 1)),
            ("test", task.preference_rows(400, 2)),
        ):
            (folder / f"{name}-{split}.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in rows)
            )
        metrics = train_reward_model(
            base=policy,
            train_file=folder / f"{name}-train.jsonl",
            eval_file=folder / f"{name}-test.jsonl",
            out=reward,
            config=parse_config(
                {"learning_rate": 1e-3, "epochs": 2, "batch_size": 32, "max_length": 64}
            ),
        )
        print(f"{name}: reward model held-out accuracy {metrics['eval']['accuracy']}", flush=True)
    for name, n, seed in (("prompts", 1024, 5), ("eval_prompts", EVAL_PROMPTS, 99)):
        path = folder / f"{name}.jsonl"
        if not path.exists():
            path.write_text("".join(json.dumps(r) + "\n" for r in prompt_rows(n, seed)))


def run_one(
    task_name: str, kind: str, value: float, seed: int, episodes: int, folder: Path, out: Path
) -> dict[str, Any]:
    """Train one policy (one thread, in this process) and measure it."""
    import torch

    from training.ml.monitor import Monitor
    from training.ml.policy_eval import sample_with_kl, win_rate
    from training.ml.ppo import parse_ppo_config, train_ppo
    from training.ml.prompts import load_prompts
    from training.ml.synthetic import TASKS

    torch.set_num_threads(1)
    task = TASKS[task_name]
    config = run_config(kind, value, seed, episodes)
    policy_out = out / "policies" / run_name(task_name, kind, value, seed)
    gold = Monitor("gold", lambda texts: [task.gold(t) for t in texts])
    started = time.perf_counter()
    metrics = train_ppo(
        policy=folder / "policy",
        reward=folder / f"reward-{task_name}",
        prompts=load_prompts(folder / "prompts.jsonl"),
        out=policy_out,
        config=parse_ppo_config(config),
        monitors=[gold],
    )
    wall = time.perf_counter() - started
    prompts = load_prompts(folder / "eval_prompts.jsonl")
    new = sample_with_kl(policy_out, prompts, reference=folder / "policy", seed=seed + 1000)
    old = sample_with_kl(folder / "policy", prompts, seed=seed + 2000)
    history = metrics["history"]
    return {
        "task": task_name,
        "kind": kind,
        "value": value,
        "seed": seed,
        "config": config,
        "wall_seconds": round(wall, 1),
        "gold_win_rate": round(win_rate(new.texts, old.texts, task.gold), 4),
        "kl": round(statistics.fmean(new.kl), 3),
        "words": round(statistics.fmean(len(t.split()) for t in new.texts), 2),
        "words_start": round(statistics.fmean(len(t.split()) for t in old.texts), 2),
        "beta_final": history[-1].get("kl_coef") if history else None,
        "curve": [
            {"step": i + 1, "kl": h.get("kl"), "beta": h.get("kl_coef"), "gold": h.get("gold")}
            for i, h in enumerate(history)
        ],
    }


def frontier_at(points: list[tuple[float, float]], kl: float) -> float | None:
    """The fixed-β frontier's gold win rate at ``kl``: linear between the sweep's points
    sorted by KL (None outside their range)."""
    points = sorted(points)
    for (k0, w0), (k1, w1) in itertools.pairwise(points):
        if k0 <= kl <= k1:
            return w0 if k1 == k0 else w0 + (w1 - w0) * (kl - k0) / (k1 - k0)
    return None


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(results: list[dict[str, Any]], tasks: list[str]) -> list[str]:
    lines: list[str] = []
    for task in tasks:
        runs = [r for r in results if r["task"] == task]
        if not runs:
            continue

        def group(
            kind: str, runs: list[dict[str, Any]] = runs
        ) -> dict[float, list[dict[str, Any]]]:
            out: dict[float, list[dict[str, Any]]] = {}
            for r in runs:
                if r["kind"] == kind:
                    out.setdefault(r["value"], []).append(r)
            return dict(sorted(out.items()))

        fixed = group("fixed")
        frontier = [
            (
                statistics.fmean(r["kl"] for r in rs),
                statistics.fmean(r["gold_win_rate"] for r in rs),
            )
            for rs in fixed.values()
        ]
        lines += [
            "",
            f"task {task}",
            f"  {'run':16} {'seeds':>5} {'final KL (nats)':>16} {'in ±20 %':>8} "
            f"{'gold win':>14} {'frontier':>8} {'ours − frontier':>15} {'words':>6} {'β end':>7}",
        ]
        labels = (("ours", "ours, target"), ("fixed", "fixed β"), ("trl", "TRL settings"))
        for kind, label in labels:
            for value, rs in group(kind).items():
                kl, kl_sd = _mean_sd([r["kl"] for r in rs])
                win, win_sd = _mean_sd([r["gold_win_rate"] for r in rs])
                words = statistics.fmean(r["words"] for r in rs)
                betas = [r["beta_final"] for r in rs if r["beta_final"] is not None]
                beta = f"{statistics.fmean(betas):.3f}" if betas else "-"
                band = ""
                if kind == "ours":
                    inside = sum(abs(r["kl"] - value) <= KL_BAND * value for r in rs)
                    band = f"{inside}/{len(rs)}"
                edge = frontier_at(frontier, kl) if kind != "fixed" else None
                diff = f"{win - edge:+.3f}" if edge is not None else "-"
                edge_text = f"{edge:.3f}" if edge is not None else "-"
                lines.append(
                    f"  {f'{label} {value:g}':16} {len(rs):>5} {f'{kl:.2f} ± {kl_sd:.2f}':>16} "
                    f"{band:>8} {f'{win:.3f} ± {win_sd:.3f}':>14} {edge_text:>8} {diff:>15} "
                    f"{words:>6.1f} {beta:>7}"
                )
        start_words = statistics.fmean(r["words_start"] for r in runs)
        lines.append(f"  starting policy: {start_words:.1f} words a response")
        ours = [r for r in runs if r["kind"] == "ours"]
        if ours:
            inside = sum(abs(r["kl"] - r["value"]) <= KL_BAND * r["value"] for r in ours)
            gaps = [
                statistics.fmean(r["gold_win_rate"] for r in rs) - edge
                for rs in group("ours").values()
                if (edge := frontier_at(frontier, statistics.fmean(r["kl"] for r in rs)))
                is not None
            ]
            gap = f"{min(gaps):+.3f} … {max(gaps):+.3f}" if gaps else "-"
            lines.append(
                f"  ours: final KL within ±20 % of target in {inside}/{len(ours)} runs; "
                f"gold win − fixed-β frontier at the same KL (seed means): {gap} "
                f"(one win rate on {EVAL_PROMPTS} samples has a standard error of at most "
                f"{(0.25 / EVAL_PROMPTS) ** 0.5:.3f})"
            )
    return lines


def plot(results: list[dict[str, Any]], tasks: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for kind, style, label in (
            ("fixed", "o-", "fixed β (sweep)"),
            ("ours", "s", "ours at defaults, target 1–5"),
            ("trl", "^", "TRL 1.12 settings"),
        ):
            by_value: dict[float, list[dict[str, Any]]] = {}
            for r in results:
                if r["task"] == task and r["kind"] == kind:
                    by_value.setdefault(r["value"], []).append(r)
            if not by_value:
                continue
            points = sorted(
                (
                    statistics.fmean(r["kl"] for r in rs),
                    statistics.fmean(r["gold_win_rate"] for r in rs),
                )
                for rs in by_value.values()
            )
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
            for rs in by_value.values():
                ax.scatter([r["kl"] for r in rs], [r["gold_win_rate"] for r in rs], s=8, alpha=0.35)
        ax.set(xlabel="KL from the start (nats per response)", ylabel="gold win rate", title=task)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=2048)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=["gold-words", "nature-length"])
    parser.add_argument("--targets", type=float, nargs="*", default=list(TARGETS))
    parser.add_argument("--betas", type=float, nargs="*", default=list(BETAS))
    parser.add_argument("--no-trl", action="store_true", help="Leave out the TRL-settings runs.")
    parser.add_argument("--jobs", type=int, default=2, help="Runs in parallel (one thread each).")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "frontier")
    parser.add_argument("--fresh", action="store_true", help="Redo runs already measured.")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    folder = args.out / "task"
    folder.mkdir(parents=True, exist_ok=True)
    if args.one:
        task, kind, value, seed = args.one[0], args.one[1], float(args.one[2]), int(args.one[3])
        result = run_one(task, kind, value, seed, args.episodes, folder, args.out)
        name = run_name(task, kind, value, seed)
        (args.out / f"result-{name}.json").write_text(json.dumps(result, indent=1))
        return 0
    from training.ml.synthetic import TASKS

    unknown = sorted(set(args.tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}: one of {', '.join(TASKS)}")
    build_task(folder, args.tasks)
    plan = [
        (task, kind, value, seed)
        for seed in args.seeds
        for task in args.tasks
        for kind, values in (
            ("ours", args.targets),
            ("fixed", args.betas),
            ("trl", [] if args.no_trl else [TRL_SETTINGS["kl_coef"]]),
        )
        for value in values
    ]
    pending = [
        p for p in plan if args.fresh or not (args.out / f"result-{run_name(*p)}.json").exists()
    ]
    print(f"{len(plan)} runs, {len(plan) - len(pending)} already measured", flush=True)
    child = [sys.executable, __file__, "--episodes", str(args.episodes), "--out", str(args.out)]
    failed = run_parallel(
        [
            (
                run_name(task, kind, value, seed),
                [*child, "--one", task, kind, str(value), str(seed)],
            )
            for task, kind, value, seed in pending
        ],
        jobs=args.jobs,
        logs=args.out,
    )
    results = [
        json.loads((args.out / f"result-{run_name(*p)}.json").read_text())
        for p in plan
        if (args.out / f"result-{run_name(*p)}.json").exists()
    ]
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"episodes per run: {args.episodes}; seeds: {', '.join(map(str, args.seeds))}")
    print("\n".join(summarize(results, args.tasks)))
    plot(results, args.tasks, args.out / "frontier.png")
    print(f"plot: {args.out / 'frontier.png'}")
    if failed:
        print(f"failed runs: {', '.join(failed)} (logs in {args.out})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
