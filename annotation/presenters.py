"""Turn queue objects into what the annotator's page sees (display order applied)."""

from __future__ import annotations

from typing import Any

from annotation.models import Assignment, Choice, Judgment, Project


def queue_item(assignment: Assignment, project: Project) -> dict[str, Any]:
    """The prompt and both responses in the lease's display order; no labels of others."""
    comparison = assignment.comparison
    a, b = comparison.response_a, comparison.response_b
    left, right = (b, a) if assignment.swapped else (a, b)
    return {
        "assignment_id": assignment.id,
        "expires_at": assignment.expires_at,
        "messages": comparison.prompt.messages,
        "left": {"content": left.content},
        "right": {"content": right.content},
        "scheme": {
            "allow_tie": project.allow_tie,
            "allow_both_bad": project.allow_both_bad,
            "strength_scale": project.strength_scale,
            "rationale_mode": project.rationale_mode,
        },
    }


def display_choice(choice: str, swapped: bool) -> str:
    """A / B (stored) back to left / right (what the annotator saw)."""
    if choice == Choice.A:
        return "right" if swapped else "left"
    if choice == Choice.B:
        return "left" if swapped else "right"
    return choice


def own_judgment(judgment: Judgment) -> dict[str, Any]:
    return {
        "id": judgment.id,
        "assignment_id": judgment.assignment_id,
        "choice": display_choice(judgment.choice, judgment.swapped),
        "strength": judgment.strength,
        "rationale": judgment.rationale,
        "time_taken_ms": judgment.time_taken_ms,
        "created_at": judgment.created_at,
    }
