"""Reward-model training throughput: our task (run row, metric callback, checkpoints,
registry) vs a bare TRL RewardTrainer script, same data, model and batch size.

    .venv/bin/python bench/reward_overhead.py --pairs 2000 --repeats 2
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_env, recreate_database

WORDS = "the a cat dog tree house river stone light cloud green red blue small large".split()
CONFIG = {
    "learning_rate": 0.003,
    "epochs": 1,
    "batch_size": 16,
    "max_length": 256,
    "logging_steps": 10,
}


def bare_trl(base: Path, train_file: Path, out: Path) -> float:
    """The reference: load, train and save with TRL alone. Returns seconds."""
    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    started = time.perf_counter()
    torch.manual_seed(0)
    data = datasets.load_dataset("json", data_files=str(train_file), cache_dir=tempfile.mkdtemp())[
        "train"
    ]
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(
        output_dir=str(out / "ckpt"),
        learning_rate=CONFIG["learning_rate"],
        num_train_epochs=1,
        per_device_train_batch_size=16,
        max_length=256,
        center_rewards_coefficient=0.01,
        use_cpu=True,
        bf16=False,
        report_to=[],
        logging_steps=10,
        save_strategy="no",
        gradient_checkpointing=False,
        disable_tqdm=True,
    )
    RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer).train()
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--database", default="preflab_bench_reward")
    args = parser.parse_args()
    recreate_database(args.database)
    env = bench_env(args.database)
    env["ARTIFACT_ROOT"] = tempfile.mkdtemp(prefix="preflab-reward-bench-")
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from annotation import queue
    from annotation.export import create_export
    from annotation.export_options import parse_export_options
    from annotation.importing import ImportOptions, import_comparisons
    from annotation.roles import Role
    from annotation.services import create_project, set_membership
    from tests.annotation.factories import jsonl
    from training.models import ModelArtifact, TrainingRun
    from training.registry import artifact_dir
    from training.reward_runs import create_reward_run, execute_reward_run

    rng = random.Random(0)
    project = create_project(name="reward bench", overlap_k=1)
    rows = []
    for i in range(args.pairs):
        body = " ".join(rng.choices(WORDS, k=6))
        rows.append(
            {
                "id": f"r{i}",
                "prompt": " ".join(rng.choices(WORDS, k=5)) + "?",
                "response_a": f"{body} thanks",
                "response_b": f"{body} whatever",
            }
        )
    import_comparisons(project=project, stream=jsonl(*rows), options=ImportOptions())
    user_model = get_user_model()
    judge = user_model.objects.create_user("judge")
    engineer = user_model.objects.create_user("engineer")
    set_membership(project=project, user=judge, role=Role.ANNOTATOR)
    set_membership(project=project, user=engineer, role=Role.ML_ENGINEER)
    while (lease := queue.lease_next(project_id=project.id, user=judge)) is not None:
        left = lease.content_b if lease.swapped else lease.content_a
        queue.submit_judgment(
            project_id=project.id,
            assignment_id=lease.id,
            user=judge,
            data=queue.JudgmentInput(
                choice="left" if left.endswith("thanks") else "right", strength=3
            ),
        )
    export = create_export(
        project=project, options=parse_export_options({"test_fraction": 0}), user=engineer
    )
    call_command("create_tiny_models", "--vocab-size", "300", stdout=io.StringIO())
    base = ModelArtifact.objects.get(kind="policy")
    train_file = Path(env["ARTIFACT_ROOT"]) / export.path / "train.jsonl"
    print(f"{export.train_rows} pairs, tiny Llama (64 wide, 2 layers), batch 16, 1 epoch, CPU")

    ours: list[float] = []
    bare: list[float] = []

    def run_ours() -> None:
        run = create_reward_run(
            project=project,
            dataset_export_id=export.id,
            base_artifact_id=base.id,
            config=CONFIG,
            user=engineer,
        )
        started = time.perf_counter()
        run = execute_reward_run(run.pk)
        ours.append(time.perf_counter() - started)
        assert run.status == "succeeded", run.error

    def run_bare() -> None:
        bare.append(bare_trl(artifact_dir(base), train_file, Path(tempfile.mkdtemp())))

    for i in range(args.repeats):  # alternate which goes first: the machine warms up
        for step in (run_ours, run_bare) if i % 2 == 0 else (run_bare, run_ours):
            step()
    n = export.train_rows
    for label, times in (("bare TRL script", bare), ("our task       ", ours)):
        print(
            f"{label} : {n / statistics.median(times):7.1f} pairs/s median "
            f"({n / min(times):.1f} best) over {len(times)} runs"
        )
    overhead = statistics.median(ours) / statistics.median(bare) - 1
    print(
        f"overhead        : {overhead * 100:+.1f} % (medians; our run includes the run row, "
        "metrics, a checkpoint and the registry)"
    )
    print(f"runs recorded   : {TrainingRun.objects.count()}")


if __name__ == "__main__":
    main()
