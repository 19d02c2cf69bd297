"""One annotator's record in a project, for the project admin's per-annotator page.

Every figure uses the quality dashboard's definitions (:mod:`annotation.quality`,
:mod:`annotation.agreement`), restricted to one annotator:

- agreement with the consensus: per judgment, whether it matches the majority of the *other*
  judgments of its comparison (``agreement.leave_one_out_agreement``; regular items, the
  others counted without excluded annotators; no clear majority → not counted);
- agreement with other annotators: the share of agreeing pairs (``percent_agreement``'s
  definition) among the pairs that include this annotator;
- gold accuracy: choice equal to the gold answer, over the gold items judged;
- position bias: share of "left" picks among A/B choices with the two-sided exact binomial
  test against 0.5 (``agreement.position_bias``) and a 95 % Clopper–Pearson interval;
- weeks start on Monday (UTC), days are UTC days, as on the dashboard.

All of it is a fixed number of queries (one for the judgments of the comparisons the
annotator judged, one for the recent list, one for the exclusions …), whatever the volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone
from numpy.typing import NDArray

from annotation import agreement as ag
from annotation.models import AnnotatorExclusion, Judgment, ProjectMembership
from annotation.presenters import display_choice
from annotation.quality import EPOCH, JudgmentArrays, _round, load_judgment_arrays
from annotation.selectors import excluded_annotator_ids, exclusions_of
from preflab.errors import NotFoundError

RECENT_LIMIT = 50
MAX_DAYS = 365
CI_METHOD = "exact"  # Clopper–Pearson
POSITION_METHOD = (
    "two-sided exact binomial test of the left share against 0.5 (scipy.stats.binomtest); "
    "95% Clopper-Pearson interval"
)


class NotAnAnnotatorOfProject(NotFoundError):
    code = "annotator_not_found"


@dataclass(frozen=True)
class AnnotatorPage:
    annotator: dict[str, Any]
    throughput: dict[str, Any]
    agreement_weeks: list[dict[str, Any]]
    gold: dict[str, Any]
    position_bias: dict[str, Any]
    recent: list[dict[str, Any]]
    exclusions: QuerySet[AnnotatorExclusion]


def annotator_identity(*, project_id: int, user_id: int) -> dict[str, Any]:
    """Who the annotator is in the project; 404 for a user who is neither a member of the
    project nor has judged in it (a user of another project is not found here)."""
    role = ProjectMembership.objects.filter(project_id=project_id, user=OuterRef("pk")).values(
        "role"
    )[:1]
    judged = Judgment.objects.filter(project_id=project_id, annotator=OuterRef("pk"))
    excluded = AnnotatorExclusion.objects.filter(
        project_id=project_id, annotator=OuterRef("pk"), revoked_at__isnull=True
    )
    row = (
        get_user_model()
        .objects.filter(pk=user_id)
        .annotate(role=Subquery(role), judged=Exists(judged), excluded=Exists(excluded))
        .values("id", "username", "role", "judged", "excluded")
        .first()
    )
    if row is None or (row["role"] is None and not row["judged"]):
        raise NotAnAnnotatorOfProject("No such annotator in this project.")
    return {
        "id": row["id"],
        "username": row["username"],
        "role": row["role"],
        "excluded": row["excluded"],
    }


def load_annotator_judgments(*, project_id: int, user_id: int) -> JudgmentArrays:
    """The judgments (everyone's) of the comparisons the annotator judged, as the quality
    module's arrays, in one query."""
    return load_judgment_arrays(
        "j.project_id = %s AND j.comparison_id IN (SELECT m.comparison_id "
        "FROM annotation_judgment m WHERE m.project_id = %s AND m.annotator_id = %s)",
        [project_id, project_id, user_id],
    )


def _day(day: int) -> str:
    return (EPOCH + timedelta(days=int(day))).isoformat()


def _median(values: NDArray[np.float64]) -> float | None:
    return _round(np.nanmedian(values) if np.isfinite(values).any() else None, 2)


@dataclass(frozen=True)
class _PerJudgment:
    """Per judgment of the annotator: consensus agreement (1 / 0 / NaN) and pair counts."""

    mine: NDArray[np.bool_]
    consensus: NDArray[np.float64]
    pairs: NDArray[np.int64]
    agreeing_pairs: NDArray[np.int64]


def _per_judgment(j: JudgmentArrays, user_id: int, excluded: set[int]) -> _PerJudgment:
    included = ~np.isin(j.annotator, list(excluded)) if excluded else np.ones(len(j), bool)
    regular = j.gold < 0
    counted = included & regular
    mine = j.annotator == user_id
    consensus = np.full(len(j), np.nan)
    pairs = np.zeros(len(j), dtype=np.int64)
    agreeing = np.zeros(len(j), dtype=np.int64)
    if len(j):
        # exactly the dashboard's counts and leave-one-out rule (quality._annotator_rows)
        counts = ag.value_counts(j.unit, np.where(counted, j.choice, -1), ag.NOMINAL_VALUES)
        consensus[regular] = ag.leave_one_out_agreement(
            j.unit[regular], j.choice[regular], counts, counted=counted[regular]
        )
        own = counted.astype(np.int64)  # a counted judgment is in its unit's counts
        others = counts.sum(axis=1)[j.unit] - own
        same = counts[j.unit, j.choice] - own
        pairs = np.where(regular, others, 0)
        agreeing = np.where(regular, same, 0)
    return _PerJudgment(mine, consensus, pairs, agreeing)


def _throughput(
    j: JudgmentArrays, mine: NDArray[np.bool_], days: int, today: date
) -> dict[str, Any]:
    day_of = (j.created[mine] // 86400).astype(np.int64)
    seconds = j.seconds[mine]
    last = (today - EPOCH).days
    per_day: list[dict[str, Any]] = []
    for d in range(last - days + 1, last + 1):
        on_day = day_of == d
        per_day.append(
            {
                "day": _day(d),
                "judgments": int(on_day.sum()),
                "median_seconds": _median(seconds[on_day]),
            }
        )
    return {
        "days": days,
        "per_day": per_day,
        "judgments_total": int(mine.sum()),
        "judgments_in_range": int(sum(d["judgments"] for d in per_day)),
        "median_seconds": _median(seconds),
    }


def _weeks(j: JudgmentArrays, p: _PerJudgment) -> list[dict[str, Any]]:
    days = (j.created // 86400).astype(np.int64)
    mondays = days - (days + 3) % 7  # 1970-01-01 was a Thursday
    rows = []
    for monday in np.unique(mondays[p.mine]):
        week = p.mine & (mondays == monday)
        decided = week & np.isfinite(p.consensus)
        pairs = int(p.pairs[week].sum())
        gold = week & (j.gold >= 0)
        rows.append(
            {
                "week": _day(monday),
                "judgments": int(week.sum()),
                "consensus_agreement": _round(
                    float(p.consensus[decided].mean()) if decided.any() else None
                ),
                "consensus_judgments": int(decided.sum()),
                "pairwise_agreement": _round(
                    p.agreeing_pairs[week].sum() / pairs if pairs else None
                ),
                "pairs": pairs,
                "gold_correct": int((j.choice[gold] == j.gold[gold]).sum()),
                "gold_total": int(gold.sum()),
            }
        )
    return rows


def _position_bias(j: JudgmentArrays, mine: NDArray[np.bool_]) -> dict[str, Any]:
    bias = ag.position_bias(j.choice[mine], j.swapped[mine])
    left = round(bias.left_share * bias.decided) if bias.left_share is not None else 0
    low = high = None
    if bias.decided:
        from scipy.stats import binomtest  # large; imported where needed, as agreement does

        interval = binomtest(left, bias.decided, 0.5).proportion_ci(0.95, method=CI_METHOD)
        low, high = _round(interval.low), _round(interval.high)
    return {
        "decided": bias.decided,
        "left": left,
        "right": bias.decided - left,
        "left_share": _round(bias.left_share),
        "deviation": _round(bias.left_share - 0.5 if bias.left_share is not None else None),
        "p_value": _round(bias.p_value, 6),
        "ci_low": low,
        "ci_high": high,
        "method": POSITION_METHOD,
    }


def _recent(
    *, project_id: int, user_id: int, j: JudgmentArrays, p: _PerJudgment
) -> list[dict[str, Any]]:
    rows = list(
        Judgment.objects.filter(project_id=project_id, annotator_id=user_id)
        .order_by("-created_at", "-id")
        .values(
            "id",
            "comparison_id",
            "comparison__prompt__external_id",
            "comparison__gold_choice",
            "choice",
            "strength",
            "swapped",
            "time_taken_ms",
            "created_at",
        )[:RECENT_LIMIT]
    )
    index = {int(jid): i for i, jid in enumerate(j.judgment_id)}
    result = []
    for row in rows:
        i = index.get(row["id"])
        consensus = p.consensus[i] if i is not None else np.nan
        gold = row["comparison__gold_choice"]
        result.append(
            {
                "judgment_id": row["id"],
                "comparison_id": row["comparison_id"],
                "prompt_external_id": row["comparison__prompt__external_id"],
                "choice": row["choice"],
                "display_choice": display_choice(row["choice"], row["swapped"]),
                "strength": row["strength"],
                "time_taken_ms": row["time_taken_ms"],
                "created_at": row["created_at"],
                "is_gold": bool(gold),
                "gold_correct": (row["choice"] == gold) if gold else None,
                "agrees_with_consensus": None if np.isnan(consensus) else bool(consensus == 1.0),
            }
        )
    return result


def annotator_page(
    *, project_id: int, user_id: int, days: int = 30, now: datetime | None = None
) -> AnnotatorPage:
    """Everything the per-annotator page shows (404 for a user not of this project)."""
    now = now or timezone.now()
    identity = annotator_identity(project_id=project_id, user_id=user_id)
    j = load_annotator_judgments(project_id=project_id, user_id=user_id)
    excluded = set(excluded_annotator_ids(project_id=project_id))
    per = _per_judgment(j, user_id, excluded)
    gold = per.mine & (j.gold >= 0)
    correct = int((j.choice[gold] == j.gold[gold]).sum())
    total = int(gold.sum())
    return AnnotatorPage(
        annotator=identity,
        throughput=_throughput(j, per.mine, days, now.astimezone(UTC).date()),
        agreement_weeks=_weeks(j, per),
        gold={
            "correct": correct,
            "total": total,
            "accuracy": _round(correct / total if total else None),
        },
        position_bias=_position_bias(j, per.mine),
        recent=_recent(project_id=project_id, user_id=user_id, j=j, p=per),
        exclusions=exclusions_of(project_id=project_id).filter(annotator_id=user_id),
    )
