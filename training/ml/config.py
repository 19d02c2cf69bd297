"""Validation of training configurations: a JSON object into a frozen dataclass, every
problem named by field. Each algorithm's config is a dataclass whose fields carry a ``help``
text and whose ranges are given as ``checks``. Plain Python: imports no Django."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")

Check = Callable[[Any], bool] | tuple[Callable[[Any], bool], str]
LARGEST = 2**63  # no configuration number is this large: a bigger one is a mistake, not a value
SEED_CHECK: Check = (lambda v: 0 <= v < 2**32, "must be an integer in 0 … 2^32 − 1")


class ConfigError(ValueError):
    """A bad configuration; ``fields`` names each bad field."""

    def __init__(self, fields_: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields_.items()))
        self.fields = fields_


def parse_dataclass(cls: type[T], raw: Mapping[str, Any], checks: Mapping[str, Check]) -> T:
    """Build ``cls`` from ``raw``: unknown keys, wrong types, non-finite or absurdly large
    numbers (|v| ≥ 2^63) and values failing their check (``check`` or ``(check, message)``)
    are reported together in one :class:`ConfigError`."""
    if not isinstance(raw, Mapping):
        raise ConfigError({"config": "must be a JSON object"})
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        spec = known.get(key)
        if spec is None:
            errors[key] = "unknown option"
            continue
        default: Any = spec.default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok and isinstance(value, float) and not math.isfinite(value):
                errors[key] = "must be a finite number"
                continue
            if ok and isinstance(default, int):
                ok = isinstance(value, int) or value.is_integer()
            if ok and abs(value) >= LARGEST:
                errors[key] = "out of range"
                continue
        else:
            ok = isinstance(value, str)
        if not ok:
            errors[key] = f"must be a {type(default).__name__}"
            continue
        values[key] = value if isinstance(default, bool) else type(default)(value)
    for key, check in checks.items():
        if key not in values:
            continue
        test, message = check if isinstance(check, tuple) else (check, "out of range")
        if not test(values[key]):
            errors[key] = message
    if errors:
        raise ConfigError(errors)
    return cls(**values)


def describe(cls: type[Any]) -> list[dict[str, Any]]:
    """Each field's name, default and help text (for forms and ``--help``)."""
    return [
        {"name": f.name, "default": f.default, "help": f.metadata.get("help", "")}
        for f in fields(cls)
    ]


PRECISION_HELP = (
    "'auto': bf16 on a CUDA device that supports it, else fp32. 'fp32': every weight, "
    "gradient and optimizer state in fp32. 'bf16': mixed precision, bf16 compute with fp32 "
    "master weights and fp32 Adam state. "
)
PRECISION_MODES = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, *, modes: tuple[str, ...] = PRECISION_MODES) -> str:
    """The precision a run uses: ``auto`` becomes ``bf16`` on a CUDA device that supports it
    and ``fp32`` elsewhere; a bf16 mode without such a device is a :class:`ConfigError`
    (bf16 on CPU is slow and unsupported by the trainers' mixed-precision path)."""
    import torch

    if precision not in modes:
        raise ConfigError({"precision": f"must be one of {', '.join(modes)}"})
    available = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if precision == "auto":
        return "bf16" if available else "fp32"
    if precision.startswith("bf16") and not available:
        raise ConfigError(
            {"precision": f"{precision} needs a CUDA device that supports bf16; use fp32 or auto"}
        )
    return precision
