"""A launched step that is a local process group: the child in a session of its own, its
stdout and stderr in the step's log file; terminate = SIGTERM to the group, SIGKILL after the
grace period, and wait until no process of the group is left. Plain Python, no Django."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

WORKER_DEVICES_ENV = "PREFLAB_WORKER_DEVICES"
REPO_ROOT = Path(__file__).resolve().parents[2]
REAP_TIMEOUT_SECONDS = 30.0  # after SIGKILL: how long to wait for the group to be gone


def worker_devices(env: Mapping[str, str]) -> list[str] | None:
    """The accelerator ids this worker owns: ``PREFLAB_WORKER_DEVICES`` (e.g. ``0,1``), else
    an inherited ``CUDA_VISIBLE_DEVICES``; None when the worker was given none (all that the
    host has)."""
    raw = env.get(WORKER_DEVICES_ENV) or env.get("CUDA_VISIBLE_DEVICES")
    if raw is None or not raw.strip():
        return None
    return [d.strip() for d in raw.split(",") if d.strip()]


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a launched step: ``CUDA_VISIBLE_DEVICES`` pinned to the worker's devices
    (when it has any), and this checkout on ``PYTHONPATH`` (the child imports ``training``)."""
    out = dict(env)
    devices = worker_devices(env)
    if devices is not None:
        out["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    paths = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO_ROOT) not in paths:
        out["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *paths])
    return out


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is left (zombies included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProcessGroup:
    """A started child process group (the :class:`~training.launch.base.Launched` of the
    subprocess and accelerate launchers)."""

    def __init__(self, proc: subprocess.Popen[bytes], log_file: Path, command: Sequence[str]):
        self.proc = proc
        self.pgid = proc.pid  # start_new_session: the child leads its own group
        self.log_file = log_file
        self.command = list(command)

    @classmethod
    def start(
        cls, command: Sequence[str], *, env: Mapping[str, str], log_file: Path, cwd: Path | None
    ) -> ProcessGroup:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(proc, log_file, command)

    def poll(self) -> int | None:
        return self.proc.poll()

    def describe(self) -> str:
        return f"pid {self.proc.pid} (process group {self.pgid}), log {self.log_file}"

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass

    def _wait_gone(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            self.proc.poll()  # reap the leader: a zombie still counts as a member
            if not group_alive(self.pgid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def terminate(self, grace_seconds: float) -> None:
        """SIGTERM to the group, SIGKILL after ``grace_seconds``; returns once no process of
        the group is left (or, after SIGKILL, :data:`REAP_TIMEOUT_SECONDS` passed, logged)."""
        if self._wait_gone(0):
            return
        self._signal(signal.SIGTERM)
        if self._wait_gone(grace_seconds):
            return
        logger.warning(
            "%s: still running %.0f s after SIGTERM, killing", self.describe(), grace_seconds
        )
        self._signal(signal.SIGKILL)
        if not self._wait_gone(REAP_TIMEOUT_SECONDS):
            logger.error("%s: processes of the group are left after SIGKILL", self.describe())


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def positive_int(
    options: Mapping[str, Any], key: str, default: int, minimum: int = 1, maximum: int = 65535
) -> int:
    """``options[key]`` as an int in ``minimum`` … ``maximum`` (ValueError naming the option
    otherwise)."""
    value = options.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise ValueError(f"{key} must be an integer in {minimum} … {maximum}, not {shown(value)}")
    return value


def known_options(options: Mapping[str, Any], allowed: Sequence[str], launcher: str) -> None:
    if not isinstance(options, Mapping):
        raise ValueError("launcher_options must be a JSON object")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        names = ", ".join(shown(k) for k in unknown[:5])
        raise ValueError(
            f"unknown {launcher} launcher option(s) {names}: one of {', '.join(allowed)}"
        )


def flag(options: Mapping[str, Any], key: str) -> bool:
    value = options.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {shown(value)}")
    return value
