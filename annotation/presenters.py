"""Turn queue objects into what the annotator's page sees (display order applied)."""

from __future__ import annotations

from typing import Any

from annotation.models import Choice
from annotation.queue import Lease, StoredJudgment


def queue_item(lease: Lease) -> dict[str, Any]:
    """The prompt and both responses in the lease's display order; no labels of others,
    nothing that tells a gold item apart."""
    a, b = lease.content_a, lease.content_b
    left, right = (b, a) if lease.swapped else (a, b)
    scheme = lease.scheme
    return {
        "assignment_id": lease.id,
        "expires_at": lease.expires_at,
        "messages": lease.messages,
        "left": {"content": left},
        "right": {"content": right},
        "scheme": {
            "allow_tie": scheme.allow_tie,
            "allow_both_bad": scheme.allow_both_bad,
            "strength_scale": scheme.strength_scale,
            "rationale_mode": scheme.rationale_mode,
        },
    }


def display_choice(choice: str, swapped: bool) -> str:
    """A / B (stored) back to left / right (what the annotator saw)."""
    if choice == Choice.A:
        return "right" if swapped else "left"
    if choice == Choice.B:
        return "left" if swapped else "right"
    return choice


def own_judgment(judgment: StoredJudgment) -> dict[str, Any]:
    return {
        "id": judgment.id,
        "assignment_id": judgment.assignment_id,
        "choice": display_choice(judgment.choice, judgment.swapped),
        "strength": judgment.strength,
        "rationale": judgment.rationale,
        "time_taken_ms": judgment.time_taken_ms,
        "created_at": judgment.created_at,
    }
