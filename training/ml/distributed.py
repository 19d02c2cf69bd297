"""Data-parallel runs of our own trainers: who this process is among the ones a launcher
started, and the few collectives they need. Plain Python + torch: no Django, no accelerate.

A launcher (``accelerate launch --multi_gpu``, ``torchrun``) starts one process per rank and
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init` joins them into a process group (NCCL for CUDA devices, gloo on CPU). Without
those variables (or with ``WORLD_SIZE=1``) there is one process, nothing is initialized and
every collective here returns its input unchanged: single-process code paths are untouched.

For the code that wraps a trainer (a child process writing metrics, a checkpoint hook):
:func:`is_main_process` says whether this process writes files (rank 0 only), and
:func:`broadcast_flag` turns a decision taken on rank 0 (stop, cancel) into the same decision
on every rank. Both work before :func:`init` too (they read the launcher's variables).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import torch

logger = logging.getLogger(__name__)

T = TypeVar("T")

BUCKET_ELEMENTS = 1 << 24
"""Gradients are all-reduced in fp32 buckets of at most this many elements (64 MiB)."""


@dataclass(frozen=True)
class World:
    """This process's place among the launched ones."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip().lstrip("-").isdigit() else default


def launched_world() -> World:
    """What the launcher's environment says (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
    return World(
        rank=_env_int("RANK", 0),
        size=max(_env_int("WORLD_SIZE", 1), 1),
        local_rank=_env_int("LOCAL_RANK", 0),
    )


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world() -> World:
    """This process's rank and the number of processes: the process group's when one is
    initialized, else the launcher's environment's (one process when there is none)."""
    if _initialized():
        return World(
            rank=torch.distributed.get_rank(),
            size=torch.distributed.get_world_size(),
            local_rank=_env_int("LOCAL_RANK", 0),
        )
    return launched_world()


def is_main_process() -> bool:
    """True on the process that writes files, logs metrics and saves models (rank 0)."""
    return world().is_main


def default_device() -> str:
    """``cuda:LOCAL_RANK`` under a multi-process launcher on a CUDA host, else ``cuda`` or
    ``cpu`` (the single-process default)."""
    if not torch.cuda.is_available():
        return "cpu"
    launched = launched_world()
    if launched.distributed:
        return f"cuda:{launched.local_rank % torch.cuda.device_count()}"
    return "cuda"


_collective_device = torch.device("cpu")


def init(device: str) -> World:
    """Join the launched processes into a process group (once; later calls return the same
    world): NCCL when ``device`` is a CUDA device (made this process's current one), gloo
    otherwise. One process: nothing is initialized."""
    global _collective_device, _joined
    if _initialized():
        return world()
    launched = launched_world()
    if not launched.distributed:
        if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true"):
            logger.info(
                "one process: `accelerate launch --cpu` starts a single process whatever "
                "--num_processes says (its CPU launcher fans out only under MPI); for "
                "several CPU processes use `accelerate launch --multi_gpu` on a host without "
                "CUDA (or CUDA_VISIBLE_DEVICES=''), or torchrun --nproc_per_node N"
            )
        return launched
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(torch.device(device))
        _collective_device = torch.device(device)
    else:
        _collective_device = torch.device("cpu")
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    _joined = True
    joined = world()
    logger.info("process %d of %d (%s)", joined.rank, joined.size, "nccl" if cuda else "gloo")
    return joined


FINISH_BARRIER_S = 300
"""How long a rank that finished waits at the closing barrier for the others."""

_joined = False


def shutdown(finished: bool = False) -> None:
    """Leave the process group (when one was initialized).

    ``finished``: this rank ran to its end (not an exception): it first waits, for at most
    :data:`FINISH_BARRIER_S`, until every rank has got here, so no rank closes its
    connections while a peer is still in a collective (rank 0 saving the model while
    rank 1 already tears down). A rank that failed leaves at once: its peers then fail
    in their next collective instead of waiting for one that never comes."""
    global _joined
    if not _initialized():
        return
    _joined = True  # (also a group a trainer's accelerate opened)
    if finished:
        try:
            if torch.distributed.get_backend() == "gloo":
                torch.distributed.monitored_barrier(timeout=timedelta(seconds=FINISH_BARRIER_S))
            else:
                torch.distributed.barrier()
        except RuntimeError as exc:  # a peer failed or left: leave anyway
            logger.warning("closing barrier failed: %s", exc)
    torch.distributed.destroy_process_group()


def exit_code(code: int) -> NoReturn:
    """End the process with ``code``. A process that joined a process group flushes its
    output and ends with ``os._exit``, skipping the interpreter's finalization: gloo's
    worker threads can still hold tensors then, and freeing one in a finalizing
    interpreter aborts the process ("terminate called without an active exception",
    SIGABRT) after all its work was done. Anything else ends with ``SystemExit``."""
    if not _joined:
        raise SystemExit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def barrier() -> None:
    if _initialized():
        torch.distributed.barrier()


def broadcast_flag(flag: bool, src: int = 0) -> bool:
    """``flag`` as rank ``src`` holds it, on every rank (a stop or cancel decided there)."""
    if not _initialized():
        return bool(flag)
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_collective_device)
    torch.distributed.broadcast(value, src=src)
    return bool(value.item())


def broadcast_object(obj: T, src: int = 0) -> T:
    """A picklable object as rank ``src`` holds it, on every rank."""
    if not _initialized():
        return obj
    box: list[Any] = [obj]
    torch.distributed.broadcast_object_list(box, src=src, device=_collective_device)
    return box[0]


def all_gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not _initialized():
        return [obj]
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` (the same shape on each) concatenated along dim 0, in rank
    order, on every rank."""
    if not _initialized():
        return tensor
    local = tensor.detach().to(_collective_device).contiguous()
    parts = [torch.empty_like(local) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, local)
    return torch.cat(parts).to(tensor.device)


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """Each value summed over the ranks (in float64)."""
    if not _initialized():
        return [float(v) for v in values]
    tensor = torch.tensor(list(values), dtype=torch.float64, device=_collective_device)
    torch.distributed.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def all_reduce_mean(values: Sequence[float]) -> list[float]:
    """Each value averaged over the ranks (in float64)."""
    size = world().size
    return [v / size for v in all_reduce_sum(values)]


def broadcast_tensors(tensors: Sequence[torch.Tensor], src: int = 0) -> None:
    """Overwrite each tensor in place with rank ``src``'s (a model's starting weights)."""
    if not _initialized():
        return
    with torch.no_grad():
        for tensor in tensors:
            if tensor.device == _collective_device:
                torch.distributed.broadcast(tensor.data, src=src)
            else:
                staged = tensor.detach().to(_collective_device)
                torch.distributed.broadcast(staged, src=src)
                tensor.data.copy_(staged)


def all_reduce_gradients(parameters: Sequence[torch.Tensor]) -> None:
    """Replace each parameter's ``.grad`` by its mean over the ranks, reduced in fp32 in
    buckets of :data:`BUCKET_ELEMENTS` (a bf16 gradient is summed in fp32 and rounded once).

    A parameter without a gradient on some rank counts as a zero gradient there; one that
    has no gradient on any rank keeps none (an optimizer skips it, as it would in one
    process)."""
    if not _initialized():
        return
    size = torch.distributed.get_world_size()
    present = torch.tensor(
        [0.0 if p.grad is None else 1.0 for p in parameters], device=_collective_device
    )
    torch.distributed.all_reduce(present)
    reduced = [p for p, seen in zip(parameters, present.tolist(), strict=True) if seen > 0]
    bucket: list[torch.Tensor] = []
    elements = 0
    for param in reduced:
        bucket.append(param)
        elements += param.numel()
        if elements >= BUCKET_ELEMENTS:
            _reduce_bucket(bucket, size)
            bucket, elements = [], 0
    if bucket:
        _reduce_bucket(bucket, size)


def _reduce_bucket(parameters: list[torch.Tensor], size: int) -> None:
    flat = torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p))
            .detach()
            .reshape(-1)
            .to(device=_collective_device, dtype=torch.float32)
            for p in parameters
        ]
    )
    torch.distributed.all_reduce(flat)
    flat /= size
    offset = 0
    for param in parameters:
        count = param.numel()
        mean = flat[offset : offset + count].view_as(param).to(param.device, param.dtype)
        offset += count
        if param.grad is None:
            param.grad = mean
        else:
            param.grad.copy_(mean)
