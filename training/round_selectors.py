"""Reads of the closed loop: a round's human-measured win rate (with the reward model's
prediction beside it) and the lineage of a model artifact back to the judgments behind it."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Max, Min, Q, QuerySet

from annotation.models import Batch, Choice, Comparison, DatasetExport, Judgment
from preflab.db_chunks import chunked
from training.models import ModelArtifact, RLHFRound, TrainingRun

Z95 = 1.959964


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (ties counted as half a success)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def batch_sides(batch: Batch, new_artifact_id: int | None) -> tuple[set[int], set[int]]:
    """Response ids of the new policy and of the previous one in a new-vs-previous batch."""
    return batches_sides([(batch, new_artifact_id)])[batch.pk]


def batches_sides(
    batches: list[tuple[Batch, int | None]],
) -> dict[int, tuple[set[int], set[int]]]:
    """:func:`batch_sides` of many batches (each with its new policy's artifact id), by batch
    id. A batch records its sides in ``metadata["response_sides"]``; for one that does not
    (published before it did), the responses are told apart by the artifact that generated
    them — read for all such batches at once, in two queries."""
    sides: dict[int, tuple[set[int], set[int]]] = {}
    untagged: dict[int, int | None] = {}
    for batch, new_artifact_id in batches:
        recorded = batch.metadata.get("response_sides")
        if isinstance(recorded, dict):
            sides[batch.pk] = (set(recorded.get("new", [])), set(recorded.get("previous", [])))
        else:
            untagged[batch.pk] = new_artifact_id
    if not untagged:
        return sides
    from annotation.models import Response

    in_batch: dict[int, set[int]] = {batch_id: set() for batch_id in untagged}
    pairs = Comparison.objects.filter(batch_id__in=list(untagged)).values_list(
        "batch_id", "response_a_id", "response_b_id"
    )
    for batch_id, a, b in pairs:
        in_batch[batch_id].update((a, b))
    everyone = sorted(set().union(*in_batch.values()))
    tagged: dict[int, int | None] = {}
    for chunk in chunked(everyone):
        tagged.update(Response.objects.filter(pk__in=chunk).values_list("id", "model_artifact_id"))
    for batch_id, ids in in_batch.items():
        new = {i for i in ids if tagged.get(i) == untagged[batch_id]}
        sides[batch_id] = (new, ids - new)
    return sides


def round_win_rate(r: RLHFRound) -> dict[str, Any] | None:
    """How often annotators preferred the new policy's response (ties and both-bad count ½),
    with a 95 % Wilson interval, and the reward model's predicted win rate on the same pairs
    (a prediction far above the humans' is the signature of over-optimization)."""
    return round_win_rates([r])[r.pk]


def round_win_rates(rounds: list[RLHFRound]) -> dict[int, dict[str, Any] | None]:
    """:func:`round_win_rate` of many rounds, with one query for all their judgments and at
    most two for the sides of batches that do not record them (the rounds come with
    ``batch`` and ``generation_run`` selected)."""
    published = [r for r in rounds if r.batch is not None]
    rows: dict[int, list[tuple[str, int, int]]] = {r.batch.pk: [] for r in published if r.batch}
    if rows:
        judged = Judgment.objects.filter(comparison__batch_id__in=list(rows)).values_list(
            "comparison__batch_id",
            "choice",
            "comparison__response_a_id",
            "comparison__response_b_id",
        )
        for batch_id, choice, a, b in judged:
            rows[batch_id].append((choice, a, b))
    rates: dict[int, dict[str, Any] | None] = {r.pk: None for r in rounds}
    sides = batches_sides([(r.batch, r.policy_artifact_id) for r in published if r.batch])
    for r in published:
        assert r.batch is not None
        new, previous = sides[r.batch.pk]
        rates[r.pk] = _win_rate(r, rows[r.batch.pk], new, previous)
    return rates


def _win_rate(
    r: RLHFRound, rows: list[tuple[str, int, int]], new: set[int], previous: set[int]
) -> dict[str, Any]:
    wins = ties = n = 0
    for choice, a, b in rows:
        if not ({a, b} & new and {a, b} & previous):
            continue
        n += 1
        if choice in (Choice.TIE, Choice.BOTH_BAD):
            ties += 1
        elif (a if choice == Choice.A else b) in new:
            wins += 1
    predicted = None
    if r.generation_run is not None:
        predicted = ((r.generation_run.metrics.get("stats") or {}).get("reward") or {}).get(
            "predicted_win_rate_new"
        )
    low, high = wilson_interval(wins + ties / 2, n)
    return {
        "n": n,
        "wins": wins,
        "ties": ties,
        "win_rate": round((wins + ties / 2) / n, 4) if n else None,
        "ci_low": round(low, 4) if n else None,
        "ci_high": round(high, 4) if n else None,
        "predicted": round(predicted, 4) if isinstance(predicted, (int, float)) else None,
    }


def _export_rows(export: DatasetExport) -> Iterator[dict[str, Any]]:
    folder = Path(settings.ARTIFACT_ROOT) / export.path
    for name in ("train.jsonl", "test.jsonl"):
        path = folder / name
        if path.exists():
            with path.open("rb") as handle:
                yield from (json.loads(line) for line in handle if line.strip())


def export_comparison_ids(export: DatasetExport) -> list[int]:
    """The comparisons an export's rows came from (its JSONL splits)."""
    return [int(row["comparison_id"]) for row in _export_rows(export)]


def export_judgments(export: DatasetExport) -> dict[str, Any]:
    """The judgments behind an export: exactly those its rows were built from (each row
    lists its ``judgment_ids``; annotators excluded at export time are not among them),
    read in chunks of what one statement may carry."""
    ids = sorted({int(j) for row in _export_rows(export) for j in row.get("judgment_ids", [])})
    annotators: set[int] = set()
    first_at = last_at = None
    for chunk in chunked(ids):
        part = Judgment.objects.filter(id__in=chunk)
        summary = part.aggregate(first=Min("created_at"), last=Max("created_at"))
        annotators.update(part.values_list("annotator_id", flat=True).distinct())
        if summary["first"] is not None:
            first_at = summary["first"] if first_at is None else min(first_at, summary["first"])
            last_at = summary["last"] if last_at is None else max(last_at, summary["last"])
    return {
        "count": len(ids),
        "annotators": len(annotators),
        "first_at": first_at,
        "last_at": last_at,
    }


def project_rounds(*, project_id: int) -> QuerySet[RLHFRound]:
    """The project's rounds, newest first, with what :func:`round_win_rates` reads."""
    return RLHFRound.objects.filter(project_id=project_id).select_related("batch", "generation_run")


def project_round(*, project_id: int, round_id: int) -> RLHFRound | None:
    """One round of the project (another project's round is not found)."""
    return project_rounds(project_id=project_id).filter(pk=round_id).first()


def lineage_artifact(*, project_id: int, artifact_id: int) -> ModelArtifact | None:
    """An artifact whose lineage the project may see: its own, or a shared base model."""
    return ModelArtifact.objects.filter(
        Q(project_id=project_id) | Q(project__isnull=True), pk=artifact_id
    ).first()


MAX_ANCESTORS = 1000  # a parent chain longer than this is cut (it would be a cycle)


def artifact_ancestors(artifact: ModelArtifact) -> list[ModelArtifact]:
    """The artifact's parent, its parent's parent, … (nearest first), in one query however
    long the chain: a recursive CTE (PostgreSQL and SQLite) instead of a query per parent.
    A chain that comes back to an artifact already on it stops there."""
    table = ModelArtifact._meta.db_table
    chain = ModelArtifact.objects.raw(
        f"WITH RECURSIVE chain(id, depth) AS ("  # noqa: S608 - the table name is the model's
        f" SELECT parent_id, 1 FROM {table} WHERE id = %s AND parent_id IS NOT NULL"
        f" UNION ALL"
        f" SELECT a.parent_id, c.depth + 1 FROM {table} a JOIN chain c ON a.id = c.id"
        f" WHERE a.parent_id IS NOT NULL AND c.depth < %s"
        f") SELECT a.*, c.depth FROM {table} a JOIN chain c ON a.id = c.id ORDER BY c.depth",
        [artifact.pk, MAX_ANCESTORS],
    )
    ancestors: list[ModelArtifact] = []
    seen = {artifact.pk}
    for ancestor in chain:
        if ancestor.pk in seen:
            break
        seen.add(ancestor.pk)
        ancestors.append(ancestor)
    return ancestors


def artifact_lineage(artifact: ModelArtifact) -> dict[str, Any]:
    """An artifact's ancestors (parent chain), the run that made it, the export it learned
    from — its own, or the nearest ancestor's — the judgments behind that export, and the
    RLHF round it belongs to."""
    ancestors = artifact_ancestors(artifact)
    run = TrainingRun.objects.filter(output_artifact=artifact).first()
    export = artifact.dataset_export
    if export is None and run is not None and run.reward_artifact is not None:
        export = run.reward_artifact.dataset_export  # a policy learned from its reward model's data
    r = (
        RLHFRound.objects.filter(policy_artifact=artifact).first()
        or RLHFRound.objects.filter(reward_artifact=artifact).first()
    )
    return {
        "artifact": artifact,
        "ancestors": ancestors,
        "run": run,
        "dataset_export": export,
        "judgments": export_judgments(export) if export is not None else None,
        "round": {"id": r.pk, "number": r.number} if r is not None else None,
    }
