"""The ``subprocess`` launcher: the step's CLI (:func:`~training.launch.base.child_command`)
as a child process group of the worker, pinned to the worker's devices. Plain Python."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.launch.base import StepSpec, child_command, register_launcher
from training.launch.process_group import ProcessGroup, child_env, flag, known_options

OPTIONS = ("checksum_weights",)


@dataclass
class SubprocessLauncher:
    """One child process: ``python -m training.launch.child SPEC``."""

    name: str = "subprocess"

    def launch(self, spec_path: Path, *, env: dict[str, str]) -> ProcessGroup:
        spec = StepSpec.read(spec_path)
        return ProcessGroup.start(
            child_command(spec_path),
            env=child_env(env),
            log_file=Path(spec.log_file),
            cwd=None,
        )


def subprocess_launcher(options: dict[str, Any]) -> SubprocessLauncher:
    """Options: ``checksum_weights`` (bool: the step records a checksum of its final
    weights, read by the worker's checks)."""
    known_options(options, OPTIONS, "subprocess")
    flag(options, "checksum_weights")
    return SubprocessLauncher()


register_launcher("subprocess", subprocess_launcher)
