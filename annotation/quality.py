"""Project quality: load judgments as arrays, compute every statistic the dashboard shows,
store it as a :class:`QualitySnapshot`. The dashboard API only reads snapshots."""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import date, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from numpy.typing import NDArray

from annotation import agreement as ag
from annotation.models import (
    Batch,
    Comparison,
    Judgment,
    Project,
    QualitySnapshot,
)
from annotation.selectors import excluded_annotator_ids

EPOCH = date(1970, 1, 1)
KAPPA_MAX_ANNOTATORS = 30
KAPPA_MIN_COMMON = 10
FLAG_LABELS = ("low_gold_accuracy", "low_consensus_agreement", "too_fast", "position_bias")


@dataclass
class JudgmentArrays:
    """One project's judgments, one entry per judgment (units are dense comparison indices)."""

    unit: NDArray[np.int64]
    comparison_id: NDArray[np.int64]
    annotator: NDArray[np.int64]
    choice: NDArray[np.int64]
    strength: NDArray[np.int64]
    swapped: NDArray[np.bool_]
    seconds: NDArray[np.float64]
    created: NDArray[np.int64]  # epoch seconds
    batch: NDArray[np.int64]
    gold: NDArray[np.int64]  # the comparison's gold choice code, −1 when not gold
    judgment_id: NDArray[np.int64]
    last_id: int

    def __len__(self) -> int:
        return len(self.unit)

    def subset(self, mask: NDArray[np.bool_]) -> JudgmentArrays:
        """The judgments where ``mask`` holds (units keep their indices)."""
        return JudgmentArrays(
            **{
                f.name: getattr(self, f.name)[mask]
                for f in dataclass_fields(self)
                if f.name != "last_id"
            },
            last_id=self.last_id,
        )


def _epoch_sql() -> str:
    if connection.vendor == "postgresql":
        return "CAST(EXTRACT(EPOCH FROM j.created_at) AS BIGINT)"
    return "CAST(strftime('%%s', j.created_at) AS INTEGER)"


CHOICE_CODE = "CASE {col} WHEN 'A' THEN 0 WHEN 'B' THEN 1 WHEN 'tie' THEN 2 WHEN 'both_bad' THEN 3 "


def load_judgments(project_id: int) -> JudgmentArrays:
    """All judgments of a project, as numpy arrays, in one query."""
    return load_judgment_arrays("j.project_id = %s", [project_id])


def load_judgment_arrays(where: str, params: list[Any]) -> JudgmentArrays:
    """The judgments matching ``where`` (SQL over ``j``, the judgment, and ``c``, its
    comparison), in id order, as numpy arrays, in one query."""
    sql = (
        "SELECT j.id, j.comparison_id, j.annotator_id, "
        + CHOICE_CODE.format(col="j.choice")
        + "ELSE 3 END, "
        "COALESCE(j.strength, 0), CASE WHEN j.swapped THEN 1 ELSE 0 END, "
        "COALESCE(j.time_taken_ms, -1), "
        + _epoch_sql()
        + ", c.batch_id, "
        + CHOICE_CODE.format(col="c.gold_choice")
        + "ELSE -1 END "
        "FROM annotation_judgment j JOIN annotation_comparison c ON c.id = j.comparison_id "
        f"WHERE {where} ORDER BY j.id"
    )
    blocks = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(100_000):  # bounded memory: tuples → int64 blocks
            blocks.append(np.array(rows, dtype=np.int64))
    data = np.concatenate(blocks) if blocks else np.zeros((0, 10), dtype=np.int64)
    comparison_id = data[:, 1]
    _, unit = np.unique(comparison_id, return_inverse=True)
    millis = data[:, 6].astype(np.float64)
    return JudgmentArrays(
        unit=unit.astype(np.int64).reshape(-1),
        comparison_id=comparison_id,
        annotator=data[:, 2],
        choice=data[:, 3],
        strength=data[:, 4],
        swapped=data[:, 5].astype(bool),
        seconds=np.where(millis >= 0, millis / 1000.0, np.nan),
        created=data[:, 7],
        batch=data[:, 8],
        gold=data[:, 9],
        judgment_id=data[:, 0],
        last_id=int(data[:, 0].max()) if len(data) else 0,
    )


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), digits)


def _agreement_block(j: JudgmentArrays, mask: NDArray[np.bool_]) -> dict[str, Any]:
    """Alpha (nominal and ordinal, with CI) and percent agreement over the masked judgments."""
    units = j.unit[mask]
    if units.size == 0:
        empty = ag.AlphaResult(None, None, None, 0, ag.NOT_ENOUGH_DATA).as_dict()
        return {"alpha_nominal": empty, "alpha_ordinal": empty, "percent_agreement": None}
    _, dense = np.unique(units, return_inverse=True)
    nominal = ag.value_counts(dense, j.choice[mask], ag.NOMINAL_VALUES)
    ordinal = ag.value_counts(
        dense, ag.ordinal_codes(j.choice[mask], j.strength[mask]), ag.ORDINAL_VALUES
    )
    return {
        "alpha_nominal": ag.alpha_with_ci(nominal, "nominal").as_dict(),
        "alpha_ordinal": ag.alpha_with_ci(ordinal, "ordinal").as_dict(),
        "percent_agreement": _round(ag.percent_agreement(nominal)),
    }


def _day_iso(day: int) -> str:
    """Days since 1970-01-01 as an ISO date."""
    return (EPOCH + timedelta(days=int(day))).isoformat()


def compute_payload(project: Project, j: JudgmentArrays) -> dict[str, Any]:
    """Everything the dashboard shows, from the arrays (pure apart from names and sizes)."""
    excluded_ids = set(excluded_annotator_ids(project_id=project.id))
    included = (
        ~np.isin(j.annotator, list(excluded_ids)) if excluded_ids else np.ones(len(j), dtype=bool)
    )
    regular = j.gold < 0
    counted = included & regular

    comparisons = Comparison.objects.filter(project=project, is_gold=False)
    totals = {
        row["batch_id"]: row
        for row in comparisons.values("batch_id").annotate(
            n=Count("id"),
            needed=Sum("target_votes"),
            done=Sum("judgment_count"),
        )
    }
    needed = sum(r["needed"] or 0 for r in totals.values())
    n_comparisons = sum(r["n"] for r in totals.values())
    complete = comparisons.filter(judgment_count__gte=project.overlap_k).count()

    gold_mask = j.gold >= 0
    gold_correct = (j.choice == j.gold) & gold_mask
    summary = {
        "judgments": len(j),
        "comparisons": n_comparisons,
        "comparisons_complete": complete,
        "coverage": _round(int(regular.sum()) / needed if needed else None),
        "annotators": int(np.unique(j.annotator).size),
        **_agreement_block(j, counted),
        "gold_accuracy": _round(gold_correct.sum() / gold_mask.sum() if gold_mask.any() else None),
        "gold_judgments": int(gold_mask.sum()),
        "median_seconds": _round(
            np.nanmedian(j.seconds) if np.isfinite(j.seconds).any() else None, 2
        ),
    }

    batch_names = dict(Batch.objects.filter(project=project).values_list("id", "name"))
    batches = []
    for batch_id in sorted(set(totals) | set(np.unique(j.batch[regular]).tolist())):
        in_batch = j.batch == batch_id
        judged = int((in_batch & regular).sum())
        row = totals.get(batch_id, {"n": 0, "needed": 0})
        batches.append(
            {
                "batch_id": int(batch_id),
                "name": batch_names.get(batch_id, f"batch {batch_id}"),
                "judgments": judged,
                "comparisons": int(row["n"]),
                "coverage": _round(judged / row["needed"] if row["needed"] else None),
                **_agreement_block(j, counted & in_batch),
            }
        )

    days = (j.created // 86400).astype(np.int64)  # UTC days since 1970-01-01 (a Thursday)
    mondays = days - (days + 3) % 7
    weeks = []
    for monday, count in zip(*np.unique(mondays, return_counts=True), strict=True):
        in_week = mondays == monday
        weeks.append(
            {
                "week": _day_iso(monday),
                "judgments": int(count),
                **_agreement_block(j, counted & in_week),
            }
        )
    throughput = [
        {"day": _day_iso(d), "judgments": int(n)}
        for d, n in zip(*np.unique(days, return_counts=True), strict=True)
    ]

    annotators = _annotator_rows(project, j, included, regular, excluded_ids)
    kappa = _kappa(j, counted, annotators)
    return {
        "summary": summary,
        "batches": batches,
        "weeks": weeks,
        "annotators": annotators,
        "kappa": kappa,
        "throughput": throughput,
        "thresholds": {
            "min_gold_accuracy": project.min_gold_accuracy,
            "min_consensus_agreement": project.min_consensus_agreement,
            "min_median_seconds": project.min_median_seconds,
            "max_position_p_value": project.max_position_p_value,
        },
    }


def _annotator_rows(
    project: Project,
    j: JudgmentArrays,
    included: NDArray[np.bool_],
    regular: NDArray[np.bool_],
    excluded_ids: set[int],
) -> list[dict[str, Any]]:
    counted = included & regular
    counts = ag.value_counts(j.unit, np.where(counted, j.choice, -1), ag.NOMINAL_VALUES)
    loo = np.full(len(j), np.nan)
    loo[regular] = ag.leave_one_out_agreement(
        j.unit[regular], j.choice[regular], counts, counted=counted[regular]
    )
    names = dict(
        get_user_model()
        .objects.filter(id__in=np.unique(j.annotator).tolist())
        .values_list("id", "username")
    )
    rows: list[dict[str, Any]] = []
    order = np.argsort(j.annotator, kind="stable")
    boundaries = np.flatnonzero(np.diff(j.annotator[order])) + 1
    for idx in np.split(order, boundaries) if len(j) else []:
        annotator_id = int(j.annotator[idx[0]])
        gold = idx[j.gold[idx] >= 0]
        agree = loo[idx]
        seconds = j.seconds[idx]
        bias = ag.position_bias(j.choice[idx], j.swapped[idx])
        row: dict[str, Any] = {
            "annotator_id": annotator_id,
            "username": names.get(annotator_id, str(annotator_id)),
            "judgments": len(idx),
            "consensus_agreement": _round(np.nanmean(agree) if np.isfinite(agree).any() else None),
            "gold_accuracy": _round((j.choice[gold] == j.gold[gold]).mean() if gold.size else None),
            "gold_judgments": int(gold.size),
            "left_share": _round(bias.left_share),
            "position_p_value": _round(bias.p_value, 6),
            "median_seconds": _round(
                np.nanmedian(seconds) if np.isfinite(seconds).any() else None, 2
            ),
            "excluded": annotator_id in excluded_ids,
        }
        row["flags"] = _flags(project, row)
        rows.append(row)
    rows.sort(key=lambda r: (-r["judgments"], r["annotator_id"]))
    return rows


def _flags(project: Project, row: dict[str, Any]) -> list[str]:
    flags = []
    if row["gold_accuracy"] is not None and row["gold_accuracy"] < project.min_gold_accuracy:
        flags.append("low_gold_accuracy")
    agreement = row["consensus_agreement"]
    if agreement is not None and agreement < project.min_consensus_agreement:
        flags.append("low_consensus_agreement")
    if row["median_seconds"] is not None and row["median_seconds"] < project.min_median_seconds:
        flags.append("too_fast")
    if row["position_p_value"] is not None and (
        row["position_p_value"] < project.max_position_p_value
    ):
        flags.append("position_bias")
    return flags


def _kappa(
    j: JudgmentArrays, counted: NDArray[np.bool_], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    top = [r for r in rows if not r["excluded"]][:KAPPA_MAX_ANNOTATORS]
    ids = [r["annotator_id"] for r in top]
    matrix, common = ag.pairwise_kappa(
        j.unit[counted],
        j.annotator[counted],
        j.choice[counted],
        ids,
        ag.NOMINAL_VALUES,
        min_common=KAPPA_MIN_COMMON,
    )
    return {
        "annotators": [{"id": r["annotator_id"], "username": r["username"]} for r in top],
        "matrix": matrix,
        "common": common,
    }


@transaction.atomic
def recompute_quality(*, project_id: int) -> QualitySnapshot:
    """Recompute a project's statistics from all its judgments and store a snapshot."""
    started = time.perf_counter()
    read_from = timezone.now()  # what the snapshot reflects: judgments as of this read
    project = Project.objects.get(pk=project_id)
    arrays = load_judgments(project_id)
    payload = compute_payload(project, arrays)
    snapshot = QualitySnapshot.objects.create(
        project=project,
        judgment_count=len(arrays),
        last_judgment_id=arrays.last_id,
        seconds=round(time.perf_counter() - started, 3),
        payload=payload,
    )
    # stamped with the read's start, not the save's: an undo committed while this ran counts
    # as a change since the snapshot (computed_at is auto_now_add, hence the update)
    QualitySnapshot.objects.filter(pk=snapshot.pk).update(computed_at=read_from)
    snapshot.computed_at = read_from
    QualitySnapshot.objects.filter(project=project).exclude(pk=snapshot.pk).delete()
    return snapshot


def projects_needing_recompute() -> list[int]:
    """Projects with at least ``PREFLAB_QUALITY_RECOMPUTE_EVERY`` judgments since their last
    snapshot (or with judgments and no snapshot yet)."""
    every: int = settings.PREFLAB_QUALITY_RECOMPUTE_EVERY
    latest = QualitySnapshot.objects.filter(project=OuterRef("project_id")).values(
        "last_judgment_id"
    )[:1]
    rows = (
        Judgment.objects.annotate(since=Coalesce(Subquery(latest), 0))
        .filter(id__gt=F("since"))
        .values("project_id")
        .annotate(n=Count("id"))
        .filter(n__gte=every)
        .values_list("project_id", flat=True)
    )
    return sorted(rows)
