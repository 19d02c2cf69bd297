"""vLLM where it is installed: whether a config that asks for it can have it, and how our
sampling settings map onto vLLM's. Plain Python: imports no Django, and vLLM only inside the
functions that run it (:func:`training.ml.generation.generate_candidates`; TRL's GRPO / RLOO
import it themselves) — everything here runs without it and is tested as pure functions.

Two places use vLLM:

- candidate generation (``sampling.use_vllm`` / ``sampling.backend``): ``LLM(model=dir)`` and
  ``generate`` with :func:`sampling_params_kwargs`;
- TRL's GRPO and RLOO (``use_vllm`` in their config): TRL's own colocate mode
  (``vllm_mode="colocate"``: vLLM shares the training GPU in the trainer's process), with
  :func:`trl_vllm_args`.

A config asks for vLLM with ``true`` (it must be there: a :class:`ConfigError` naming what is
missing otherwise), ``false`` (never) or, for generation, ``"auto"`` (when installed on a CUDA
host).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.ml.config import ConfigError

AUTO = "auto"
# TRL's vLLM modes; Preflab runs only colocate (server mode needs a separate vLLM server)
TRL_VLLM_MODES = ("colocate",)


@dataclass(frozen=True)
class VllmHost:
    """What this host offers vLLM."""

    installed: bool  # the vllm package is importable
    cuda: bool  # a CUDA device is present


def vllm_host() -> VllmHost:
    """This host (imports torch, not vLLM)."""
    import torch

    return VllmHost(
        installed=importlib.util.find_spec("vllm") is not None, cuda=torch.cuda.is_available()
    )


def use_vllm(
    requested: bool | str, host: VllmHost, *, field: str = "use_vllm", cpu_requested: bool = False
) -> bool:
    """Whether to sample with vLLM: ``True`` → yes, or a :class:`ConfigError` on ``field``
    saying what this host lacks; ``False`` → no; ``"auto"`` → when installed on a CUDA host
    (and no CPU device was asked for)."""
    if requested is False:
        return False
    if requested == AUTO:
        return host.installed and host.cuda and not cpu_requested
    if requested is not True:
        raise ConfigError({field: 'must be true, false or "auto"'})
    missing = [
        what
        for what, ok in (
            ("the vllm package, which is not installed on this host", host.installed),
            ("a CUDA device, and this host has none", host.cuda),
            ("a CUDA device, and a CPU device was asked for", not cpu_requested),
        )
        if not ok
    ]
    if missing:
        raise ConfigError({field: "vLLM was asked for but needs " + "; and ".join(missing)})
    return True


def sampling_params_kwargs(
    *,
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    stop_token_ids: Sequence[int],
) -> dict[str, Any]:
    """``vllm.SamplingParams(**kwargs)`` for our sampling settings: the same distribution as the
    transformers backend — no top-k cut (``-1``: every token, like ``top_k=0`` there), the
    same stop tokens (EOS and the chat template's end of turn) — ``n`` completions per
    prompt, at most ``max_new_tokens`` each, seeded."""
    return {
        "n": n,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": -1,
        "max_tokens": max_new_tokens,
        "seed": seed,
        "stop_token_ids": list(stop_token_ids),
        "skip_special_tokens": True,
    }


def engine_kwargs(model_dir: Path, *, seed: int) -> dict[str, Any]:
    """``vllm.LLM(**kwargs)`` for a policy directory: its own tokenizer, the checkpoint's dtype
    (bf16 / fp16 on the GPU), seeded."""
    return {"model": str(model_dir), "tokenizer": str(model_dir), "seed": seed, "dtype": "auto"}


@dataclass(frozen=True)
class SampledSequence:
    """One vLLM completion, reduced to what a candidate needs."""

    token_ids: tuple[int, ...]  # before the stop token
    finished: bool  # a stop token ended it (False: cut at max_tokens)


def sampled_sequence(
    token_ids: Sequence[int], finish_reason: str | None, stop_ids: set[int]
) -> SampledSequence:
    """A vLLM ``CompletionOutput``'s ids up to its stop token (vLLM may keep the stop token at
    the end of ``token_ids``), and whether it finished (``finish_reason == "stop"``)."""
    ids = list(token_ids)
    cut = next((k for k, t in enumerate(ids) if t in stop_ids), len(ids))
    return SampledSequence(tuple(ids[:cut]), finish_reason == "stop")


def trl_vllm_args(
    *,
    use: bool,
    mode: str,
    gpu_memory_utilization: float,
    stop_token_ids: Sequence[int],
) -> dict[str, Any]:
    """The ``GRPOConfig`` / ``RLOOConfig`` arguments (TRL 1.16 field names) for vLLM:
    colocate mode, its share of the GPU's memory, and our stop tokens for ``SamplingParams``
    (TRL passes ``generation_kwargs`` to it), so a completion ends where the transformers
    path ends it. Without vLLM, only ``use_vllm=False``."""
    if not use:
        return {"use_vllm": False}
    if mode not in TRL_VLLM_MODES:
        raise ConfigError({"vllm_mode": "must be colocate (server mode is not offered)"})
    return {
        "use_vllm": True,
        "vllm_mode": mode,
        "vllm_gpu_memory_utilization": gpu_memory_utilization,
        "generation_kwargs": {"stop_token_ids": list(stop_token_ids)},
    }
