"""The ``ray`` launcher: a step submitted as a Ray job to a Ray cluster's job server.

A run with ``launcher: ray`` (options: :class:`RayOptions`) is submitted through
:class:`ray.job_submission.JobSubmissionClient` to the dashboard at ``address`` (the option,
else ``RAY_ADDRESS``; e.g. ``http://head:8265``). The job's entrypoint is the step's command —
``python -m training.launch.child SPEC``, shell-quoted, with the cluster's interpreter
(``python``, default ``python``) in place of the worker's — and its runtime environment:

- ``env_vars``: the variables the worker hands the step (``launch(env=…)``), less those that
  describe the worker's own host (``PATH``, ``HOME``, the virtualenv, …), plus
  ``RAY_JOB_STOP_WAIT_TIME_S`` (the grace period between the job's SIGTERM and its SIGKILL);
- ``py_modules``: Preflab's ``training`` package, uploaded from the worker (half a megabyte),
  so that the job runs the worker's version of the ML code even when the cluster's image
  carries an older one (``ship_code: false`` uses the cluster's installed ``training``).
  Not ``working_dir``: the repository holds the virtualenv, the frontend and ``var/``, and
  the step's paths are absolute anyway.

**Storage is shared**: the spec, the inputs, the staging folder, the checkpoints, the metrics
file are paths under the artifact root, which every node of the cluster mounts at the same
path as the worker (a network filesystem). Nothing is copied to or from the cluster.

The step's stdout and stderr are the job's logs: each :meth:`RayJob.poll` appends what is new
of them (``get_job_logs``) to ``spec.log_file``, so the supervisor reads the log tail as it
does for a child process. :meth:`RayJob.terminate` stops the job (``stop_job``: SIGTERM to the
entrypoint's process group, SIGKILL after the grace period) and waits until the job is in a
terminal state.

Ray is imported lazily: without it, launching says ``pip install '.[ray]'``.
"""

from __future__ import annotations

import os
import shlex
import signal
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from training.launch.base import StepSpec, child_command, register_launcher

# The worker's own host, not the step's: never forwarded to the cluster.
HOST_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "HOSTNAME",
        "TMPDIR",
        "VIRTUAL_ENV",
        "PYTHONHOME",
        "PYTHONPATH",  # py_modules sets the job's own
        "LD_LIBRARY_PATH",
        "CUDA_VISIBLE_DEVICES",  # Ray assigns the job's GPUs
        "RAY_ADDRESS",  # the job's driver gets the cluster's own (the GCS, not the dashboard)
    }
)

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
STOPPED_EXIT = -int(signal.SIGTERM)  # what a child process stopped by the cancel returns


class RayUnavailable(RuntimeError):
    """Ray is not installed on the worker."""


def _job_submission() -> Any:
    try:
        from ray import job_submission
    except ImportError as exc:  # pragma: no cover - ray is a dev dependency
        raise RayUnavailable(
            "the ray launcher needs Ray on the worker: pip install '.[ray]'"
        ) from exc
    return job_submission


@dataclass(frozen=True)
class RayOptions:
    """A run's ``launcher_options`` for ``launcher: ray`` (and ``openrlhf``)."""

    address: str = ""  # the dashboard, http://HOST:8265; empty: $RAY_ADDRESS
    python: str = "python"  # the interpreter on the cluster's nodes
    ship_code: bool = True  # upload the worker's training package as py_modules
    entrypoint_num_cpus: float = 0.0  # resources reserved for the entrypoint process
    entrypoint_num_gpus: float = 0.0
    entrypoint_memory: int = 0  # bytes
    stop_grace_seconds: int = 30  # SIGTERM → SIGKILL on cancel (RAY_JOB_STOP_WAIT_TIME_S)
    submission_prefix: str = "preflab"
    env_vars: dict[str, str] = field(default_factory=dict)  # added to the job's environment
    pip: list[str] = field(default_factory=list)  # runtime_env pip packages (a warm image is
    # better: each new set of packages is a virtualenv built on every node)

    @classmethod
    def parse(cls, options: dict[str, Any]) -> RayOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"unknown ray launcher option(s) {', '.join(unknown)}: "
                f"valid are {', '.join(sorted(known))}"
            )
        parsed = cls(**options)
        if not parsed.resolved_address():
            raise ValueError(
                "the ray launcher needs an address: the 'address' option or RAY_ADDRESS"
            )
        return parsed

    def resolved_address(self) -> str:
        return self.address or os.environ.get("RAY_ADDRESS", "")


def job_environment(env: dict[str, str], options: RayOptions) -> dict[str, str]:
    """The job's env_vars: the step's variables without the worker host's, and the options'."""
    forwarded = {k: v for k, v in env.items() if k not in HOST_VARIABLES}
    forwarded.update(options.env_vars)
    # the job supervisor reads it with int(): whole seconds
    forwarded["RAY_JOB_STOP_WAIT_TIME_S"] = str(max(1, int(options.stop_grace_seconds)))
    return forwarded


def entrypoint(argv: Sequence[str], python: str) -> str:
    """``argv`` as one shell command, the cluster's ``python`` in place of a Python
    interpreter's path in front (the worker's ``sys.executable`` means nothing there)."""
    args = list(argv)
    if args and Path(args[0]).name.startswith("python"):
        args[0] = python
    return shlex.join(args)


def runtime_env(env: dict[str, str], options: RayOptions) -> dict[str, Any]:
    renv: dict[str, Any] = {"env_vars": job_environment(env, options)}
    if options.ship_code:
        import training

        renv["py_modules"] = [str(Path(training.__file__).resolve().parent)]
    if options.pip:
        renv["pip"] = list(options.pip)
    return renv


class RayJob:
    """A submitted Ray job (:class:`training.launch.base.Launched`)."""

    def __init__(
        self,
        client: Any,
        submission_id: str,
        log_file: Path,
        *,
        unreachable_seconds: float = 300.0,
    ) -> None:
        self.client = client
        self.submission_id = submission_id
        self.log_file = log_file
        self.unreachable_seconds = unreachable_seconds
        self._logged = 0  # characters of the job's logs already in log_file
        self._returncode: int | None = None
        self._unreachable_since: float | None = None

    def status(self) -> str:
        return str(getattr(self.client.get_job_status(self.submission_id), "value", "UNKNOWN"))

    def sync_logs(self) -> None:
        """Append what is new of the job's logs to ``log_file``."""
        try:
            logs = str(self.client.get_job_logs(self.submission_id))
        except Exception:  # the job server is briefly away: the next poll catches up
            return
        if len(logs) < self._logged:  # logs rotated away: start over
            self._logged = 0
        if len(logs) > self._logged:
            with self.log_file.open("a") as out:
                out.write(logs[self._logged :])
            self._logged = len(logs)

    def poll(self) -> int | None:
        """The exit status once the job is terminal (see the module's note), else None."""
        if self._returncode is not None:
            return self._returncode
        try:
            info = self.client.get_job_info(self.submission_id)
        except Exception as exc:
            # the job server restarting, the network: still running as far as we know, for
            # a while; a job whose status stays unreadable is reported, never waited on forever
            now = time.monotonic()
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since > self.unreachable_seconds:
                raise RuntimeError(
                    f"ray job {self.submission_id}: no status for "
                    f"{self.unreachable_seconds:.0f} s ({exc})"
                ) from exc
            return None
        self._unreachable_since = None
        status = str(getattr(info.status, "value", info.status))
        self.sync_logs()
        if status not in TERMINAL:
            return None
        if status == "SUCCEEDED":
            code = 0
        elif status == "STOPPED":
            code = STOPPED_EXIT
        else:
            exit_code = getattr(info, "driver_exit_code", None)
            code = exit_code if isinstance(exit_code, int) and exit_code != 0 else 1
            if info.message:
                with self.log_file.open("a") as out:
                    out.write(f"\n[ray] job {self.submission_id} {status}: {info.message}\n")
        self._returncode = code
        return code

    def terminate(self, grace_seconds: float) -> None:
        """Stop the job and wait until Ray reports it terminal (the supervisor sends SIGKILL
        ``stop_grace_seconds`` after SIGTERM); gives up after ``grace_seconds`` + 60 s."""
        if self.poll() is not None:
            return
        self.client.stop_job(self.submission_id)
        deadline = time.monotonic() + grace_seconds + 60.0
        while time.monotonic() < deadline:
            if self.poll() is not None:
                return
            time.sleep(0.5)
        raise TimeoutError(f"ray job {self.submission_id} still {self.status()} after stop")

    def describe(self) -> str:
        return f"ray job {self.submission_id}"


class RayJobLauncher:
    """Submits a step as a Ray job (:class:`training.launch.base.Launcher`)."""

    name = "ray"

    def __init__(self, options: RayOptions) -> None:
        self.options = options

    def client(self) -> Any:
        return _job_submission().JobSubmissionClient(self.options.resolved_address())

    def submit(
        self, argv: Sequence[str], *, spec: StepSpec, env: dict[str, str], kind: str
    ) -> RayJob:
        """Submit ``argv`` (its interpreter replaced by the cluster's) as a job whose logs
        go to ``spec.log_file``."""
        client = self.client()
        submission_id = f"{self.options.submission_prefix}-{kind}-{uuid.uuid4().hex[:12]}"
        resources: dict[str, Any] = {}
        if self.options.entrypoint_num_cpus:
            resources["entrypoint_num_cpus"] = self.options.entrypoint_num_cpus
        if self.options.entrypoint_num_gpus:
            resources["entrypoint_num_gpus"] = self.options.entrypoint_num_gpus
        if self.options.entrypoint_memory:
            resources["entrypoint_memory"] = self.options.entrypoint_memory
        log_file = Path(spec.log_file)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self.stop_earlier_attempts(client, spec, log_file)
        command = entrypoint(argv, self.options.python)
        with log_file.open("a") as out:
            out.write(f"[ray] submitting {submission_id}: {command}\n")
        client.submit_job(
            entrypoint=command,
            submission_id=submission_id,
            runtime_env=runtime_env(env, self.options),
            metadata={
                "preflab_kind": kind,
                "preflab_out": spec.out,
                "preflab_checkpoints": spec.checkpoint_dir,
            },
            **resources,
        )
        return RayJob(client, submission_id, log_file)

    def stop_earlier_attempts(self, client: Any, spec: StepSpec, log_file: Path) -> None:
        """Stop the jobs an earlier attempt of the same run left running (its worker died,
        and a job on the cluster does not notice that), before this attempt resumes from the
        run's checkpoints: the run's jobs are those whose metadata names its checkpoint
        folder."""
        for info in client.list_jobs():
            metadata = getattr(info, "metadata", None) or {}
            status = str(getattr(info.status, "value", info.status))
            job_id = getattr(info, "submission_id", None)
            if (
                job_id
                and metadata.get("preflab_checkpoints") == spec.checkpoint_dir
                and status not in TERMINAL
            ):
                with log_file.open("a") as out:
                    out.write(f"[ray] stopping {job_id}, left running by an earlier attempt\n")
                RayJob(client, job_id, log_file).terminate(self.options.stop_grace_seconds)

    def launch(self, spec_path: Path, *, env: dict[str, str]) -> RayJob:
        spec = StepSpec.read(spec_path)
        return self.submit(child_command(spec_path), spec=spec, env=env, kind=spec.kind)


def make_ray_launcher(options: dict[str, Any]) -> RayJobLauncher:
    return RayJobLauncher(RayOptions.parse(options))


register_launcher("ray", make_ray_launcher)
