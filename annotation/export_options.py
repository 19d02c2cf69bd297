"""Options of a preference-dataset export: a dataclass with a help string per field,
validated once, stored with the export so that it can be reproduced."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from preflab.errors import InvalidInputError

MAX_EXPORT_BATCHES = 100_000  # batch ids one export may name (a clear 400 beyond)
LLAMA2_MARGINS = {4: 1.0, 3: 2 / 3, 2: 1 / 3, 1: 0.0}


class InvalidExportOptions(InvalidInputError):
    code = "invalid_export"


@dataclass(frozen=True)
class ExportOptions:
    batches: list[int] = field(
        default_factory=list, metadata={"help": "Batch ids to export; empty means all."}
    )
    judged_after: datetime | None = field(
        default=None, metadata={"help": "Only judgments made at or after this time."}
    )
    judged_before: datetime | None = field(
        default=None, metadata={"help": "Only judgments made before this time."}
    )
    min_votes: int = field(default=1, metadata={"help": "Judgments a comparison needs."})
    min_confidence: float = field(
        default=0.0,
        metadata={"help": "Consensus confidence needed (vote share, or posterior for DS)."},
    )
    consensus: str = field(default="majority", metadata={"help": "'majority' or 'dawid_skene'."})
    ties: str = field(default="exclude", metadata={"help": "'exclude' or 'keep' ties."})
    both_bad: str = field(default="exclude", metadata={"help": "'exclude' or 'keep'."})
    include_gold: bool = field(default=False, metadata={"help": "Export gold items too."})
    style: str = field(
        default="conversational",
        metadata={"help": "'conversational' (message lists) or 'standard' (strings)."},
    )
    margins: dict[int, float] = field(
        default_factory=lambda: dict(LLAMA2_MARGINS),
        metadata={"help": "Strength (1 negligibly … 4 significantly) → margin."},
    )
    test_fraction: float = field(
        default=0.1, metadata={"help": "Share of prompts in the test split."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the split by prompt."})
    formats: list[str] = field(
        default_factory=lambda: ["jsonl"],
        metadata={"help": "Any of 'jsonl', 'parquet', 'hf' (datasets.save_to_disk)."},
    )

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("judged_after", "judged_before"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        data["margins"] = {str(k): v for k, v in self.margins.items()}
        return data


CHOICES = {
    "consensus": ("majority", "dawid_skene"),
    "ties": ("exclude", "keep"),
    "both_bad": ("exclude", "keep"),
    "style": ("conversational", "standard"),
}
FORMATS = ("jsonl", "parquet", "hf")
MAX_MARGIN = 100.0  # a Bradley–Terry margin in reward units; anything larger is a mistake


def parse_export_options(raw: dict[str, Any]) -> ExportOptions:
    """Validate a JSON object into :class:`ExportOptions`; every problem is named by field."""
    known = {f.name for f in fields(ExportOptions)}
    errors: dict[str, str] = {}
    unknown = sorted(set(raw) - known)
    if unknown:
        errors["non_field_errors"] = f"unknown option(s): {', '.join(unknown)}"
    values: dict[str, Any] = {}
    for name, allowed in CHOICES.items():
        if name in raw:
            if raw[name] not in allowed:
                errors[name] = f"must be one of {', '.join(allowed)}"
            else:
                values[name] = raw[name]
    if "batches" in raw:
        batches = raw["batches"]
        if not isinstance(batches, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) for b in batches
        ):
            errors["batches"] = "must be a list of batch ids"
        elif len(batches) > MAX_EXPORT_BATCHES:
            errors["batches"] = f"must name at most {MAX_EXPORT_BATCHES} batches"
        else:
            values["batches"] = sorted(set(batches))
    for name in ("judged_after", "judged_before"):
        if raw.get(name) is not None:
            parsed = parse_datetime(str(raw[name])) if isinstance(raw[name], str) else None
            if parsed is None or parsed.tzinfo is None:
                errors[name] = "must be an ISO 8601 date-time with a time zone"
            else:
                values[name] = parsed
    _number(raw, values, errors, "min_votes", int, 1, 1000)
    _number(raw, values, errors, "min_confidence", float, 0.0, 1.0)
    _number(raw, values, errors, "test_fraction", float, 0.0, 0.9)
    _number(raw, values, errors, "seed", int, 0, 2**31 - 1)
    if "include_gold" in raw:
        if not isinstance(raw["include_gold"], bool):
            errors["include_gold"] = "must be true or false"
        else:
            values["include_gold"] = raw["include_gold"]
    if "margins" in raw:
        margins = raw["margins"]
        try:
            parsed_margins = {int(k): float(v) for k, v in dict(margins).items()}
        except (TypeError, ValueError):
            errors["margins"] = "must map strengths 1–4 to numbers"
        else:
            if set(parsed_margins) != {1, 2, 3, 4}:
                errors["margins"] = "must give a margin for each strength 1, 2, 3 and 4"
            elif not all(
                math.isfinite(v) and abs(v) <= MAX_MARGIN for v in parsed_margins.values()
            ):
                errors["margins"] = f"margins must be finite numbers within ±{MAX_MARGIN}"
            else:
                values["margins"] = parsed_margins
    if "formats" in raw:
        formats = raw["formats"]
        if not isinstance(formats, list) or not formats or any(f not in FORMATS for f in formats):
            errors["formats"] = f"must be a non-empty list of {', '.join(FORMATS)}"
        else:
            values["formats"] = sorted(set(formats), key=FORMATS.index)
    after, before = values.get("judged_after"), values.get("judged_before")
    if after and before and after >= before:
        errors["judged_before"] = "must be later than judged_after"
    if errors:
        first = next(iter(errors.items()))
        raise InvalidExportOptions(f"{first[0]}: {first[1]}", extra={"fields": errors})
    return ExportOptions(**values)


def _sane_margin(value: float) -> bool:
    return math.isfinite(value) and abs(value) <= MAX_MARGIN


def _number(
    raw: dict[str, Any],
    values: dict[str, Any],
    errors: dict[str, str],
    name: str,
    kind: type,
    low: float,
    high: float,
) -> None:
    if name not in raw:
        return
    value = raw[name]
    ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:  # float(10**400) would overflow: an int is an int
        ok_type = ok_type and (isinstance(value, int) or value.is_integer())
    if not ok_type or not low <= value <= high:
        errors[name] = f"must be a number between {low} and {high}"
        return
    values[name] = kind(value)
