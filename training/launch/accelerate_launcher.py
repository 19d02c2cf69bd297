"""The ``accelerate`` launcher: ``accelerate launch`` of the step's entry point over N
processes (data parallel, DeepSpeed ZeRO-2/3 or FSDP, by a shipped config chosen by name),
on one machine or several. Plain Python.

The shipped config (``configs/<name>.yaml``) is resolved into the spec's folder
(``accelerate-<name>.yaml``: process counts, the main process's address, absolute paths of the
DeepSpeed files), so every launch leaves the exact config it ran with next to its spec.

Without CUDA, one process runs with ``--cpu``; several run as data parallel over gloo: the
config's ``MULTI_GPU`` type makes ``accelerate launch`` start them through torchrun, and
``ACCELERATE_USE_CPU`` keeps them on the CPU (``--cpu --num_processes N`` alone starts only
one process in accelerate 1.15).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from training.launch.base import CHILD_MODULE, StepSpec, register_launcher
from training.launch.process_group import (
    ProcessGroup,
    child_env,
    flag,
    known_options,
    positive_int,
    shown,
    worker_devices,
)

CONFIGS = Path(__file__).resolve().parent / "configs"
CONFIG_NAMES = ("ddp", "zero2", "zero3", "fsdp")
OPTIONS = (
    "num_processes",
    "config",
    "num_machines",
    "machine_rank",
    "main_process_ip",
    "main_process_port",
    "checksum_weights",
)


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def default_num_processes(env: Mapping[str, str]) -> int:
    """One process per device of the worker (``PREFLAB_WORKER_DEVICES`` /
    ``CUDA_VISIBLE_DEVICES``, else every GPU of the host); 1 without any."""
    devices = worker_devices(env)
    if devices is not None:
        return max(len(devices), 1)
    import torch

    return max(torch.cuda.device_count(), 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AccelerateLauncher:
    """``accelerate launch --config_file … -m training.launch.child SPEC``."""

    config: str = "ddp"
    num_processes: int | None = None  # None: the worker's device count
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int | None = None
    name: str = "accelerate"

    def resolved_config(self, num_processes: int, *, cuda: bool) -> dict[str, Any]:
        """The shipped config with this launch's numbers filled in."""
        config: dict[str, Any] = yaml.safe_load((CONFIGS / f"{self.config}.yaml").read_text())
        if self.config != "ddp" and not cuda:
            raise ValueError(f"the {self.config} config needs CUDA devices; this host has none")
        if self.config == "ddp" and num_processes == 1 and self.num_machines == 1:
            config["distributed_type"] = "NO"
        config.update(
            num_processes=num_processes,
            num_machines=self.num_machines,
            machine_rank=self.machine_rank,
        )
        if self.main_process_ip is not None:
            config["main_process_ip"] = self.main_process_ip
        if self.main_process_port is not None:
            config["main_process_port"] = self.main_process_port
        elif self.num_machines == 1:  # not torchrun's fixed 29500: steps side by side
            config["main_process_port"] = free_port()
        deepspeed = config.get("deepspeed_config") or {}
        if "deepspeed_config_file" in deepspeed:
            deepspeed["deepspeed_config_file"] = str(CONFIGS / deepspeed["deepspeed_config_file"])
        return config

    def command(self, spec_path: Path, config_file: Path, *, cuda: bool, one: bool) -> list[str]:
        cpu = ["--cpu"] if one and not cuda else []
        return [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(config_file),
            *cpu,
            "-m",
            CHILD_MODULE,
            str(spec_path),
        ]

    def launch(self, spec_path: Path, *, env: dict[str, str]) -> ProcessGroup:
        spec = StepSpec.read(spec_path)
        cuda = cuda_available()
        count = self.num_processes or default_num_processes(env)
        config = self.resolved_config(count, cuda=cuda)
        config_file = spec_path.parent / f"accelerate-{self.config}.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=True))
        launch_env = child_env(env)
        if not cuda:
            launch_env["ACCELERATE_USE_CPU"] = "true"
        one = count == 1 and self.num_machines == 1
        return ProcessGroup.start(
            self.command(spec_path, config_file, cuda=cuda, one=one),
            env=launch_env,
            log_file=Path(spec.log_file),
            cwd=None,
        )


def accelerate_launcher(options: dict[str, Any]) -> AccelerateLauncher:
    """Options: ``config`` (ddp, zero2, zero3, fsdp; default ddp), ``num_processes`` (all
    machines together; default: the worker's device count), and for several machines
    ``num_machines``, ``machine_rank``, ``main_process_ip``, ``main_process_port``;
    ``checksum_weights`` (bool: each rank records a checksum of its final weights)."""
    known_options(options, OPTIONS, "accelerate")
    flag(options, "checksum_weights")
    config = options.get("config", "ddp")
    if config not in CONFIG_NAMES:
        raise ValueError(f"config must be one of {', '.join(CONFIG_NAMES)}, not {shown(config)}")
    num_processes = (
        positive_int(options, "num_processes", 1) if "num_processes" in options else None
    )
    num_machines = positive_int(options, "num_machines", 1)
    machine_rank = positive_int(options, "machine_rank", 0, minimum=0)
    if machine_rank >= num_machines:
        raise ValueError(f"machine_rank must be below num_machines ({num_machines})")
    ip = options.get("main_process_ip")
    if ip is not None and (not isinstance(ip, str) or not ip.strip() or len(ip) > 255):
        raise ValueError("main_process_ip must be a host name or address")
    port = options.get("main_process_port")
    if port is not None:
        port = positive_int(options, "main_process_port", 0)
    if num_machines > 1 and (ip is None or port is None):
        raise ValueError("several machines need main_process_ip and main_process_port")
    if num_processes is not None and num_processes < num_machines:
        raise ValueError("num_processes counts every machine's processes: at least num_machines")
    return AccelerateLauncher(
        config=config,
        num_processes=num_processes,
        num_machines=num_machines,
        machine_rank=machine_rank,
        main_process_ip=ip,
        main_process_port=port,
    )


register_launcher("accelerate", accelerate_launcher)
