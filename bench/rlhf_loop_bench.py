"""The closed loop over several rounds on the synthetic gold-rule task, end to end: gunicorn
and a Celery worker (default + gpu queues) on PostgreSQL and Redis, simulated annotators
judging through the HTTP API, rounds started through the API.

Per round it prints the reward model's held-out accuracy, the humans' (simulated) win rate of
the new policy against the previous one and the reward model's prediction of it, the gold win
rate and the KL of the round's policy against the starting one, and the wall time of each step.

    python bench/rlhf_loop_bench.py [--rounds 3] [--prompts 400] [--noise 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import REPO, bench_env, recreate_database, start_server

HOST, PORT = "127.0.0.1", 8124
BROKER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def round_config(episodes: int) -> dict[str, Any]:
    return {
        "accumulate": True,
        "export": {"test_fraction": 0.1},
        "reward": {"learning_rate": 0.002, "epochs": 3, "batch_size": 32, "max_length": 64},
        "policy": {
            "total_episodes": episodes,
            "mini_batch_size": 32,
            "ppo_epochs": 1,
            "learning_rate": 1e-4,
            "kl_coef": 0.2,
            "auto_kl_coef": False,
            "target_kl": 2.0,
            "kl_horizon": 500,
        },
        "generation": {"sampling": {"n": 1, "max_new_tokens": 24}},
    }


def api(method: str, path: str, token: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"http://{HOST}:{PORT}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def step_seconds(steps: list[dict[str, Any]]) -> dict[str, float]:
    out = {}
    for step in steps:
        if step["started_at"] and step["finished_at"]:
            started = datetime.fromisoformat(step["started_at"])
            finished = datetime.fromisoformat(step["finished_at"])
            out[step["name"]] = round((finished - started).total_seconds(), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--episodes", type=int, default=2048, help="PPO episodes per round.")
    parser.add_argument("--database", default="preflab_bench_loop")
    args = parser.parse_args()
    recreate_database(args.database)
    artifacts = tempfile.mkdtemp(prefix="preflab-loop-bench-")
    env = bench_env(args.database) | {
        "ARTIFACT_ROOT": artifacts,
        "CELERY_BROKER_URL": BROKER,
        "OMP_NUM_THREADS": "1",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from accounts.services import issue_token
    from annotation.importing import ImportOptions, import_comparisons
    from annotation.roles import Role
    from annotation.services import create_project, set_membership
    from annotation.simulation import SimulationConfig, simulate
    from tests.annotation.factories import jsonl
    from training.ml.policy_eval import sample_with_kl, win_rate
    from training.ml.synthetic import (
        PolicyShape,
        build_synthetic_policy,
        gold_score,
        prompt_rows,
        random_answer,
    )
    from training.models import ModelArtifact
    from training.registry import artifact_dir, register_artifact, staging_dir

    started = time.perf_counter()
    start_files = build_synthetic_policy(Path(artifacts) / "start-src", shape=PolicyShape())
    staged = staging_dir("start")
    shutil.copytree(start_files, staged, dirs_exist_ok=True)
    start = register_artifact(source=staged, name="start", kind="policy")
    print(f"starting policy built in {time.perf_counter() - started:.0f} s", flush=True)
    project = create_project(name="loop bench", overlap_k=1)
    rng = random.Random(0)
    rows = [
        {
            "id": f"q{i}",
            "prompt": r["prompt"],
            "response_a": random_answer(rng),
            "response_b": random_answer(rng),
        }
        for i, r in enumerate(prompt_rows(args.prompts, 11))
    ]
    import_comparisons(project=project, stream=jsonl(*rows), options=ImportOptions())
    engineer = get_user_model().objects.create_user("engineer")
    set_membership(project=project, user=engineer, role=Role.ML_ENGINEER)
    token = issue_token(user=engineer, name="bench").key

    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "preflab", "purge", "-f", "-Q", "default,gpu"],
        cwd=REPO,
        env=env,
        capture_output=True,
        check=False,
    )
    server = start_server(env, HOST, PORT, workers=2)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "preflab",
            "worker",
            "-Q",
            "default,gpu",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=REPO,
        env=env,
    )
    annotators = SimulationConfig(annotators=args.annotators, noise=args.noise, seed=1)
    eval_prompts = [r["prompt"] for r in prompt_rows(512, 99)]
    lines = []
    failed = False
    try:
        report = simulate(
            base_url=f"http://{HOST}:{PORT}", project_id=project.id, config=annotators
        )
        print(
            f"initial feedback: {report.total} judgments at {report.judgments_per_s:.0f}/s",
            flush=True,
        )
        previous = None
        for number in range(1, args.rounds + 1):
            body = {"config": round_config(args.episodes)}
            if number == 1:
                body["base_policy"] = start.pk
            r = api("POST", f"/api/projects/{project.id}/rounds/", token, body)
            while r["status"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(1)
                r = api("GET", f"/api/projects/{project.id}/rounds/{r['id']}/", token)
            if r["status"] != "succeeded":
                print(f"round {number} {r['status']}: {r['error']}")
                failed = True
                break
            judged = simulate(
                base_url=f"http://{HOST}:{PORT}", project_id=project.id, config=annotators
            )
            r = api("GET", f"/api/projects/{project.id}/rounds/{r['id']}/", token)
            reward = api(
                "GET", f"/api/projects/{project.id}/training-runs/{r['reward_run_id']}/", token
            )
            policy = artifact_dir(ModelArtifact.objects.get(pk=r["policy_artifact_id"]))
            new = sample_with_kl(policy, eval_prompts, reference=start_files, seed=number)
            old = sample_with_kl(start_files, eval_prompts, seed=1000 + number)
            vs_previous = (
                win_rate(new.texts, previous.texts, gold_score) if previous is not None else None
            )
            previous = new
            wr = r["win_rate"]
            line = {
                "round": number,
                "judgments_used": r["steps"][0]["detail"]["judgments"],
                "rm_accuracy": (reward["metrics"].get("eval") or {}).get("accuracy"),
                "human_win_rate": wr["win_rate"],
                "human_ci": [wr["ci_low"], wr["ci_high"]],
                "rm_predicted_win_rate": wr["predicted"],
                "judged_pairs": judged.total,
                "gold_win_vs_start": round(win_rate(new.texts, old.texts, gold_score), 3),
                "gold_win_vs_previous_round": round(vs_previous, 3)
                if vs_previous is not None
                else None,
                "gold_mean": round(statistics.fmean(gold_score(t) for t in new.texts), 3),
                "kl_vs_start": round(statistics.fmean(new.kl), 2),
                "step_seconds": step_seconds(r["steps"]),
            }
            lines.append(line)
            print(json.dumps(line), flush=True)
    finally:
        worker.terminate()
        server.terminate()
        worker.wait(30)
        server.wait(30)
        shutil.rmtree(artifacts, ignore_errors=True)
    print()
    print(
        f"{'round':>5} {'RM acc':>7} {'human win (95% CI)':>22} {'RM pred':>8}"
        + f" {'gold win vs start':>18} {'KL':>6}  step seconds"
    )
    for line in lines:
        ci = line["human_ci"]
        print(
            f"{line['round']:>5} {line['rm_accuracy']:>7} "
            f"{line['human_win_rate']:>8} ({ci[0]:.2f}–{ci[1]:.2f}) "
            f"{line['rm_predicted_win_rate']!s:>8} "
            f"{line['gold_win_vs_start']:>18} {line['kl_vs_start']:>6}  {line['step_seconds']}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
