"""The run lifecycle is the lowest layer of training: it signals "run finished" upward
(:data:`training.run_lifecycle.run_finished`) and learns the run tasks by registration, so it
imports none of the modules above it — not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[2] / "training"
ABOVE_THE_LIFECYCLE = {
    "training.rounds",
    "training.tasks",
    "training.reward_runs",
    "training.policy_runs",
    "training.generation_runs",
    "training.rounds_api",
    "training.api",
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_run_lifecycle_imports_no_layer_above_it() -> None:
    imports = imported_modules(TRAINING / "run_lifecycle.py")
    assert not imports & ABOVE_THE_LIFECYCLE, imports & ABOVE_THE_LIFECYCLE


def test_a_finished_run_reaches_the_rounds_through_the_signal() -> None:
    from training import rounds
    from training.run_lifecycle import run_finished

    # disconnecting answers whether it was connected (the app's ready connected it)
    assert run_finished.disconnect(rounds.advance_rounds_waiting_on)
    run_finished.connect(rounds.advance_rounds_waiting_on)
