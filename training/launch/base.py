"""The contract between a worker and a training step it launches outside its own process.

A *step* (a reward, DPO, PPO, GRPO or RLOO training) is described by a :class:`StepSpec`,
written as ``spec.json`` into the run's work folder. Whatever launches it (a child process,
``accelerate launch``, a Ray job), the step runs the same entry point,
``python -m training.launch.child SPEC``, and keeps to one contract:

- **metrics**: it appends one JSON object per line to ``spec.metrics_file``:
  ``{"step": int, "total": int, "values": {name: number}}`` per logged step, and, last,
  ``{"event": "done", "metrics": {...}}`` (the run's summary) when it succeeded. Only one
  process (rank 0) writes;
- **artifact**: on success, the trained model is in ``spec.out`` (a staging folder); the
  worker registers it, and only on success;
- **checkpoints**: in ``spec.checkpoint_dir`` (the run's own), so that a step re-launched after
  a lost worker resumes from them, whatever the launcher;
- **exit status**: 0 on success; anything else is a failure, and the last lines of
  ``spec.log_file`` (the child's stdout and stderr) become the run's error;
- **cancel**: on SIGTERM the step stops at its next step, saves no artifact and exits non-zero;
  the launcher sends SIGKILL after a grace period.

The worker side (the supervisor) tails the metrics file into ``RunMetric`` rows, keeps the
run's heartbeat, watches for a cancel and maps the exit status. Launchers are registered by
name (:func:`register_launcher`); plain Python, no Django.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

CHILD_MODULE = "training.launch.child"
SPEC_NAME = "spec.json"


@dataclass(frozen=True)
class StepSpec:
    """Everything a launched step reads; paths are absolute and on storage every process of
    the step can reach (the artifact root)."""

    kind: str  # reward | dpo | ppo | grpo | rloo
    config: dict[str, Any]  # the run's config, as stored on the run
    base: str  # the starting model's folder (policy, or reward model's base)
    out: str  # staging folder the trained artifact is written into
    checkpoint_dir: str  # the run's checkpoints (resume after a lost worker)
    metrics_file: str  # JSONL the step appends its metrics to
    log_file: str  # the step's stdout and stderr
    reward: str | None = None  # reward model folder (ppo, grpo, rloo)
    train_file: str | None = None  # preference rows (reward, dpo)
    eval_file: str | None = None  # held-out rows (reward, dpo), None when the split is empty
    prompts_file: str | None = None  # prompt rows (ppo, grpo, rloo)
    extra: dict[str, Any] = field(default_factory=dict)  # launcher-specific settings

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def read(cls, path: Path) -> StepSpec:
        return cls(**json.loads(path.read_text()))


def child_command(spec_path: Path) -> list[str]:
    """The step's command line in a plain child process: this interpreter, the child entry
    point and the spec."""
    return [sys.executable, "-m", CHILD_MODULE, str(spec_path)]


class Launched(Protocol):
    """A step that was started: a process group, an ``accelerate launch``, a Ray job."""

    def poll(self) -> int | None:
        """The exit status once the step ended, else None."""

    def terminate(self, grace_seconds: float) -> None:
        """Stop the step: SIGTERM (or the job's stop), then SIGKILL after the grace period;
        returns once nothing of it runs any more."""

    def describe(self) -> str:
        """What was started, for the run's log (e.g. ``pid 1234`` or ``ray job raysubmit_…``)."""


class Launcher(Protocol):
    """Starts a step described by the spec at ``spec_path``."""

    name: str

    def launch(self, spec_path: Path, *, env: dict[str, str]) -> Launched: ...


_LAUNCHERS: dict[str, Callable[[dict[str, Any]], Launcher]] = {}


def register_launcher(name: str, factory: Callable[[dict[str, Any]], Launcher]) -> None:
    """Make ``name`` a valid ``launcher`` of runs; ``factory`` builds the launcher from the
    run's ``launcher_options`` (e.g. ``{"num_processes": 2, "config": "zero2"}``)."""
    _LAUNCHERS[name] = factory


def launcher_names() -> list[str]:
    return ["inprocess", *sorted(_LAUNCHERS)]


def get_launcher(name: str, options: dict[str, Any] | None = None) -> Launcher:
    """The launcher called ``name``; ValueError naming the valid ones otherwise."""
    factory = _LAUNCHERS.get(name)
    if factory is None:
        raise ValueError(f"unknown launcher {name!r}: one of {', '.join(launcher_names())}")
    return factory(options or {})
