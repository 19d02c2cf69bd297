"""``python -m training.launch.child SPEC``: run one training step described by a
:class:`~training.launch.base.StepSpec` with the plain-Python trainers, keeping to the launch
contract (see :mod:`training.launch.base`). No Django here.

Every process of the step runs this module (one, or one per rank under ``accelerate
launch``). Rank 0 writes the metrics JSONL and the artifact into ``spec.out``; the other
ranks save their copy of the model into a scratch folder of their own, removed at the end.
A SIGTERM (or the supervising worker's death, when ``PREFLAB_SUPERVISOR_PID`` names it)
stops the step at its next step; under several processes the TRL trainers' ranks agree on
the stop (an all-reduce of the flag each step), so that they leave the same step together.
A stopped step exits with :data:`EXIT_STOPPED` and writes no ``done`` line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from training.launch.base import StepSpec

EXIT_STOPPED = 143  # 128 + SIGTERM, as a process killed by the signal would report
EXIT_FAILED = 1
SUPERVISOR_ENV = "PREFLAB_SUPERVISOR_PID"
ORPHAN_EXIT_SECONDS = 60.0  # an orphaned step that has not stopped by then exits at once
KINDS = ("reward", "dpo", "ppo", "grpo", "rloo")


def process_rank() -> int:
    """This process's rank among the step's processes (0 when it runs alone)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)


class StepStopped(Exception):
    """The step was asked to stop (SIGTERM, or its supervisor is gone)."""


class StopFlag:
    """Set by a SIGTERM or a lost supervisor; read at every training step. Under several
    processes :meth:`agreed` all-reduces it, so every rank stops at the same step."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            print(f"[rank {process_rank()}] stopping at the next step: {reason}", flush=True)
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def agreed(self) -> bool:
        """True when any rank was asked to stop (a collective call: every rank must make it
        at the same step)."""
        local = self.event.is_set()
        try:
            import torch
            import torch.distributed as dist
        except ImportError:  # pragma: no cover - torch is a dependency of every trainer
            return local
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return local
        device = (
            torch.device("cuda", torch.cuda.current_device())
            if dist.get_backend() == "nccl"
            else torch.device("cpu")
        )
        flag = torch.tensor([1 if local else 0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() and not local:
            self.set("another rank stopped")
        return bool(flag.item())

    def install(self) -> None:
        """Stop on SIGTERM (and SIGINT) instead of dying mid-step."""

        def handle(signum: int, frame: object) -> None:
            self.set(f"signal {signal.Signals(signum).name}")

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def watch_supervisor(self, pid: int, interval: float = 0.25) -> None:
        """A daemon thread: once the supervising worker (``pid``) is gone, stop at the next
        step; a step that is still running :data:`ORPHAN_EXIT_SECONDS` later exits at once
        (a re-queued run's new attempt must not meet this one in its checkpoints)."""

        def loop() -> None:
            while process_alive(pid):
                time.sleep(interval)
            self.set(f"the supervising worker (pid {pid}) is gone")
            time.sleep(ORPHAN_EXIT_SECONDS)
            print("orphaned step did not stop in time: exiting", flush=True)
            os._exit(EXIT_STOPPED)

        threading.Thread(target=loop, name="supervisor-watch", daemon=True).start()


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie — dead, not yet reaped — counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill()
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class MetricsWriter:
    """Appends the contract's JSONL lines (rank 0 only; the other ranks write nothing)."""

    def __init__(self, path: Path | None) -> None:
        self.handle: TextIO | None = path.open("a") if path is not None else None

    def write(self, line: dict[str, Any]) -> None:
        if self.handle is not None:
            self.handle.write(json.dumps(line, default=str) + "\n")
            self.handle.flush()

    def step(self, step: int, total: int, logs: dict[str, Any]) -> None:
        values = {
            k: v for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        self.write({"step": int(step), "total": int(total or 0), "values": values})

    def done(self, metrics: dict[str, Any]) -> None:
        self.write({"event": "done", "metrics": metrics})

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def state_checksum(model: Any) -> str:
    """sha256 over a model's parameters and buffers (by name, as fp32 bytes): the ranks of a
    data-parallel step that hold the same weights give the same value."""
    sha = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        sha.update(name.encode() + b"\0")
        sha.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


class FinalWeights:
    """The checksum of the trained model as the trainer ends (each rank its own)."""

    def __init__(self) -> None:
        self.checksum: str | None = None


def trainer_callback(
    metrics: MetricsWriter, stop: StopFlag, final: FinalWeights | None = None
) -> Any:
    """A transformers ``TrainerCallback``: metrics of every log, and a stop at the next step
    (nothing saved: the step raises :class:`StepStopped` before its checkpoint); with
    ``final``, the checksum of the model's weights when training ends."""
    from transformers import TrainerCallback

    class _Callback(TrainerCallback):
        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if final is not None and kwargs.get("model") is not None:
                final.checksum = state_checksum(kwargs["model"])

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            metrics.step(state.global_step, state.max_steps, logs or {})

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if stop.agreed():
                control.should_training_stop = True
                control.should_save = False
                raise StepStopped(stop.reason)

    return _Callback()


def _read_jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _optional(path: str | None) -> Path | None:
    return Path(path) if path else None


def run_step(
    spec: StepSpec,
    out: Path,
    metrics: MetricsWriter,
    stop: StopFlag,
    final: FinalWeights | None = None,
) -> dict[str, Any]:
    """Train the step's model into ``out`` with the trainer of ``spec.kind``; its metrics
    (``final``: where the TRL trainers leave the checksum of the final weights)."""
    checkpoints = Path(spec.checkpoint_dir)
    checkpoints.mkdir(parents=True, exist_ok=True)
    if spec.kind == "reward":
        from training.ml.reward import parse_config, train_reward_ensemble, train_reward_model

        config = parse_config(spec.config)
        assert spec.train_file, "a reward step needs train_file"
        common: dict[str, Any] = {
            "base": Path(spec.base),
            "train_file": Path(spec.train_file),
            "eval_file": _optional(spec.eval_file),
            "out": out,
            "config": config,
            "callbacks": [trainer_callback(metrics, stop, final)],
        }
        if config.ensemble_size > 1:
            return train_reward_ensemble(**common)
        return train_reward_model(**common, checkpoint_dir=checkpoints)
    if spec.kind == "dpo":
        from training.ml import policy_trl

        assert spec.train_file, "a DPO step needs train_file"
        return policy_trl.train_dpo(
            policy=Path(spec.base),
            train_file=Path(spec.train_file),
            eval_file=_optional(spec.eval_file),
            out=out,
            config=policy_trl.parse_dpo_config(spec.config),
            callbacks=[trainer_callback(metrics, stop, final)],
            checkpoint_dir=checkpoints,
        )
    assert spec.reward and spec.prompts_file, f"a {spec.kind} step needs reward and prompts_file"
    if spec.kind == "ppo":
        from training.ml.ppo import CHECKSUMS_ENV, parse_ppo_config, train_ppo

        def on_step(step: int, total: int, values: dict[str, float]) -> bool:
            # no collective here: whether PPO calls its hook on every rank is PPO's business
            # (a rank left waiting in a collective gets the launcher's SIGKILL after the grace)
            metrics.step(step, total, values)
            return stop.is_set()

        if spec.extra.get("checksum_weights") and spec.extra.get("rank_dir"):
            # every rank's fingerprint (policy and value weights, β, reward statistics)
            os.environ[CHECKSUMS_ENV] = str(Path(spec.extra["rank_dir"]) / "ppo")
        result = train_ppo(
            policy=Path(spec.base),
            reward=Path(spec.reward),
            prompts=[row["prompt"] for row in _read_jsonl(Path(spec.prompts_file))],
            out=out,
            config=parse_ppo_config(spec.config),
            on_step=on_step,
            checkpoint_dir=checkpoints,
            on_checkpoint=stop.is_set,
        )
        fingerprint = Path(os.environ.get(CHECKSUMS_ENV, "-")) / f"rank-{process_rank()}.json"
        if fingerprint.is_file() and final is not None:
            final.checksum = json.loads(fingerprint.read_text())["policy"]
        return result
    if spec.kind in ("grpo", "rloo"):
        from training.ml import policy_trl

        grpo = spec.kind == "grpo"
        parse = policy_trl.parse_grpo_config if grpo else policy_trl.parse_rloo_config
        train = policy_trl.train_grpo if grpo else policy_trl.train_rloo
        return train(
            policy=Path(spec.base),
            reward=Path(spec.reward),
            prompts_file=Path(spec.prompts_file),
            out=out,
            config=parse(spec.config),  # type: ignore[arg-type]
            callbacks=[trainer_callback(metrics, stop, final)],
            checkpoint_dir=checkpoints,
        )
    raise ValueError(f"unknown step kind {spec.kind!r}: one of {', '.join(KINDS)}")


def weights_checksum(folder: Path) -> str:
    """sha256 over every tensor of the saved model in ``folder`` (as :func:`state_checksum`
    of the loaded model would be, for one safetensors file)."""
    from safetensors import safe_open

    sha = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for name in sorted(handle.keys()):
                sha.update(name.encode() + b"\0")
                sha.update(handle.get_tensor(name).float().contiguous().numpy().tobytes())
    return sha.hexdigest()


def write_rank_info(spec: StepSpec, rank: int, **fields: Any) -> None:
    """``spec.extra["rank_dir"]/rank-R.json``: this rank's pid and host (at start) and, at the
    end, the checksum of its final weights (with ``spec.extra["checksum_weights"]``)."""
    folder = spec.extra.get("rank_dir")
    if not folder:
        return
    path = Path(folder) / f"rank-{rank}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current | fields))
    tmp.replace(path)


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The run's summary: the step rows are in the metrics file already."""
    return {k: v for k, v in metrics.items() if k != "history"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m training.launch.child SPEC", file=sys.stderr)
        return 2
    spec = StepSpec.read(Path(args[0]))
    rank = process_rank()
    stop = StopFlag()
    stop.install()
    supervisor = os.environ.get(SUPERVISOR_ENV, "")
    if supervisor.isdigit():
        stop.watch_supervisor(int(supervisor))
    write_rank_info(spec, rank, pid=os.getpid(), host=socket.gethostname())
    metrics = MetricsWriter(Path(spec.metrics_file) if rank == 0 else None)
    out = Path(spec.out) if rank == 0 else Path(tempfile.mkdtemp(prefix=f"step-rank-{rank}-"))
    cleanup: Callable[[], None] = (
        (lambda: None) if rank == 0 else (lambda: shutil.rmtree(out, ignore_errors=True))
    )
    final = FinalWeights()
    finished = False
    try:
        result = run_step(spec, out, metrics, stop, final)
        finished = True
        if stop.is_set():
            print(f"[rank {rank}] stopped: {stop.reason}; no artifact", flush=True)
            return EXIT_STOPPED
        if spec.extra.get("checksum_weights"):
            # the trainer's final weights on every rank (PPO: the saved model, rank 0)
            checksum = final.checksum or (weights_checksum(out) if rank == 0 else None)
            write_rank_info(spec, rank, weights_sha256=checksum)
        metrics.done(summary(result))
        return 0
    except StepStopped as exc:
        finished = True  # every rank takes the same stop decision (it is broadcast)
        print(f"[rank {rank}] stopped: {exc}; no artifact", flush=True)
        return EXIT_STOPPED
    finally:
        metrics.close()
        cleanup()
        from training.ml import distributed

        # the process group PPO (or a trainer's accelerate) opened
        distributed.shutdown(finished)


if __name__ == "__main__":
    from training.ml.distributed import exit_code

    exit_code(main())
