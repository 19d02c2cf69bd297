"""Helpers that build import files and projects with comparisons for the annotation tests."""

from __future__ import annotations

import io
import json
from typing import Any

from annotation.importing import ImportOptions, ImportReport, import_comparisons
from annotation.models import Project


def jsonl(*records: Any) -> io.BytesIO:
    return io.BytesIO(
        b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)
    )


def pair_records(n: int, prefix: str = "p", gold: dict[int, str] | None = None) -> list[dict]:
    gold = gold or {}
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "id": f"{prefix}{i}",
            "prompt": f"Question {prefix}{i}?",
            "response_a": f"Answer one to {prefix}{i}.",
            "response_b": f"Answer two to {prefix}{i}.",
        }
        if i in gold:
            row["gold"] = gold[i]
        rows.append(row)
    return rows


def seed_pairs(project: Project, n: int, **kwargs: Any) -> ImportReport:
    return import_comparisons(
        project=project, stream=jsonl(*pair_records(n, **kwargs)), options=ImportOptions()
    )
