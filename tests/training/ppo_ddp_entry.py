"""A caller of ``train_ppo`` run by tests under ``accelerate launch`` (one process per rank),
as a wrapper such as a child entry point calls it: an ``on_step`` hook that records its calls
and may ask the run to stop, and each rank's returned result written to a file.

    python -m tests.training.ppo_ddp_entry SPEC.json

SPEC: ``policy``, ``reward``, ``prompts`` (JSONL), ``out``, ``config`` (PPOConfig fields),
``checkpoints`` (or null), ``record`` (a folder) and ``stop_at`` (a step at which on_step
returns True, or null).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from training.ml import distributed
from training.ml.monitor import Monitor
from training.ml.ppo import parse_ppo_config, train_ppo
from training.ml.prompts import load_prompts


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    record = Path(spec["record"])
    record.mkdir(parents=True, exist_ok=True)
    rank = distributed.world().rank
    calls = record / f"on-step-rank-{rank}.jsonl"

    def on_step(step: int, total: int, metrics: dict[str, float]) -> bool:
        with calls.open("a") as handle:
            handle.write(json.dumps({"step": step, "total": total, "metrics": metrics}) + "\n")
        return spec["stop_at"] is not None and step >= spec["stop_at"]

    def words(texts: list[str]) -> list[float]:
        with (record / f"monitor-rank-{rank}.jsonl").open("a") as handle:
            handle.write(json.dumps({"texts": len(texts)}) + "\n")
        return [float(len(t.split())) for t in texts]

    def on_checkpoint() -> bool:
        with (record / f"on-checkpoint-rank-{rank}.txt").open("a") as handle:
            handle.write("checkpoint\n")
        return False

    result = train_ppo(
        policy=Path(spec["policy"]),
        reward=Path(spec["reward"]),
        prompts=load_prompts(Path(spec["prompts"])),
        out=Path(spec["out"]),
        config=parse_ppo_config(spec["config"]),
        on_step=on_step,
        checkpoint_dir=Path(spec["checkpoints"]) if spec["checkpoints"] else None,
        on_checkpoint=on_checkpoint,
        monitors=[Monitor("words", words)],
    )
    (record / f"result-rank-{rank}.json").write_text(json.dumps(result, sort_keys=True))
    distributed.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
