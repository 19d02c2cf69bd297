"""The run lifecycle is the lowest layer of training: it signals "run finished" upward
(:data:`training.run_lifecycle.run_finished`) and learns the run tasks by registration, so it
imports none of the modules above it — not even inside a function."""

from __future__ import annotations

import ast
import re
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


# --- generation and publishing ----------------------------------------------------------------

REPO = TRAINING.parent
ANNOTATION = REPO / "annotation"
# generation's parts, each importing only those before it; the service (training.generation)
# composes them and none of them imports it
GENERATION_PARTS = [
    "training.generation_errors",
    "training.generation_sampling",
    "training.generation_pairing",
    "training.generation_request",
    "training.generation_publish",
]
PUBLISHING = {
    "annotation.comparison_specs",
    "annotation.pairing",
    "annotation.import_records",
    "annotation.publish_sql",
    "annotation.publishing",
    "annotation.importing",
}
PURE = {"annotation.comparison_specs", "annotation.pairing", "annotation.import_records"}


def module_path(module: str) -> Path:
    return REPO / (module.replace(".", "/") + ".py")


def project_modules(imports: set[str]) -> set[str]:
    """The imported names that are modules of this repository (``a.b`` of ``from a.b import c``
    and ``a.b.c`` when c is a module)."""
    return {name for name in imports if module_path(name).exists()}


def test_each_part_of_generation_imports_only_the_parts_before_it() -> None:
    for k, part in enumerate(GENERATION_PARTS):
        imports = project_modules(imported_modules(module_path(part)))
        later = set(GENERATION_PARTS[k + 1 :]) | {"training.generation"}
        assert not imports & later, (part, imports & later)


def test_the_publishing_modules_import_nothing_from_training() -> None:
    for module in PUBLISHING:
        imports = imported_modules(module_path(module))
        assert not {m for m in imports if m.split(".")[0] == "training"}, module


def test_the_publication_specs_and_pairing_are_plain_python() -> None:
    for module in PURE:
        imports = imported_modules(module_path(module))
        outside = {m for m in imports if m.split(".")[0] == "django" or m == "annotation.models"}
        assert not outside, (module, outside)


def test_the_ml_side_imports_no_django_and_nothing_of_the_apps() -> None:
    for path in sorted((TRAINING / "ml").glob("*.py")):
        imports = imported_modules(path)
        roots = {m.split(".")[0] for m in imports}
        assert "django" not in roots and "annotation" not in roots, path.name
        app = {m for m in imports if m.startswith("training.") and not m.startswith("training.ml")}
        assert not app, (path.name, app)


WRITES = re.compile(
    r"\b(Comparison|Response)\.objects\.(bulk_create|create|get_or_create|update_or_create)\b"
    r"|INSERT INTO \{(COMPARISON|RESPONSE)\}"
)


def test_only_the_publishing_service_writes_responses_and_comparisons() -> None:
    writers = {
        path.relative_to(REPO).as_posix()
        for root in (ANNOTATION, TRAINING)
        for path in root.rglob("*.py")
        if "migrations" not in path.parts and WRITES.search(path.read_text())
    }
    assert writers == {"annotation/publishing.py", "annotation/publish_sql.py"}
