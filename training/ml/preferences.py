"""Which rows of a preference file state a preference. Plain Python: imports no Django.

An export written with ``ties: keep`` or ``both_bad: keep`` carries rows whose ``label`` is
``tie`` or ``both_bad``; their ``chosen`` / ``rejected`` are just A and B. Bradley–Terry and
DPO read every row as "chosen ≻ rejected", so such a row would teach A ≻ B. The reward and
DPO trainers keep only ordered rows (``label`` A or B, or no ``label`` at all, as in a file
made elsewhere) and report how many of each unordered label they dropped.
"""

from __future__ import annotations

from typing import Any

UNORDERED_LABELS = ("tie", "both_bad")


def ordered_rows(data: Any) -> tuple[Any, dict[str, int]]:
    """The rows of a ``datasets.Dataset`` that state a preference, and the count of dropped
    rows per unordered label (``{"tie": n, "both_bad": m}``)."""
    dropped = dict.fromkeys(UNORDERED_LABELS, 0)
    if "label" not in data.column_names:
        return data, dropped
    for label in data["label"]:
        if label in dropped:
            dropped[label] += 1
    if not any(dropped.values()):
        return data, dropped
    return data.filter(lambda row: row["label"] not in UNORDERED_LABELS), dropped


def is_ordered(row: dict[str, Any]) -> bool:
    """A plain row (a dict) states a preference."""
    return row.get("label") not in UNORDERED_LABELS
