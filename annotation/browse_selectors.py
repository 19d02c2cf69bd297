"""Reads for the data browser: a project's prompts, comparisons and judgments, one keyset page
at a time, and one comparison with its whole history.

Every list is ordered newest first by id and paged with an opaque cursor that carries the last
id seen (``id < cursor``): no OFFSET, no COUNT over the table, and a row inserted while someone
pages is never shown twice nor shifts the pages after it. Each page is one SQL statement that
joins what its rows show, so a page costs the same number of queries at any page size.

Agreement and consensus come from ``annotation_comparisonvotes``, the per-comparison vote
tallies that triggers keep in the same transaction as the judgments (migration 0006):
agreement is the top choice's share of the votes (the majority consensus's confidence, as in
exports), over every judgment, excluded annotators included.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import orjson
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.dateparse import parse_datetime

from annotation.models import Assignment, Comparison, Judgment, JudgmentRevision
from annotation.selectors import excluded_annotator_ids
from preflab.errors import InvalidInputError, NotFoundError

VOTES_TABLE = "annotation_comparisonvotes"
PREVIEW_CHARS = 300
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
STATUSES = ("open", "complete", "gold")


class InvalidCursor(InvalidInputError):
    """A cursor that is not one this list (with these filters) handed out: code "invalid"."""


@dataclass(frozen=True)
class BrowseFilters:
    """The validated filters of a list (None: not filtered)."""

    batch: int | None = None
    annotator: int | None = None
    status: str | None = None
    agreement_min: float | None = None
    agreement_max: float | None = None
    gold: bool | None = None
    prompt: int | None = None
    external_id: str | None = None
    comparison: int | None = None
    choice: str | None = None


@dataclass
class Page:
    results: list[dict[str, Any]]
    next_cursor: str | None


# --- cursors ---------------------------------------------------------------------------------


def encode_cursor(kind: str, *last: int) -> str:
    """An opaque token for "the rows of list ``kind`` after the row whose keys are ``last``"."""
    keys = ".".join(str(int(k)) for k in last)
    return base64.urlsafe_b64encode(f"{kind}:{keys}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, token: str) -> tuple[int, ...]:
    """The keys a cursor of list ``kind`` carries; :class:`InvalidCursor` for anything else."""
    problem = InvalidCursor(
        "cursor: not a cursor of this list (use the next_cursor of a previous page).",
        extra={"fields": {"cursor": ["Not a cursor of this list."]}},
    )
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise problem from exc
    prefix, _, numbers = text.partition(":")
    parts = numbers.split(".")
    if prefix != kind or not 1 <= len(parts) <= 2:
        raise problem
    if not all(part.isdigit() and len(part) <= 19 for part in parts):
        raise problem
    keys = tuple(int(part) for part in parts)
    if not all(0 < key < 2**63 for key in keys):
        raise problem
    return keys


def _one_key(cursor: tuple[int, ...] | None) -> int | None:
    if cursor is None:
        return None
    if len(cursor) != 1:
        raise InvalidCursor(
            "cursor: not a cursor of this list with these filters.",
            extra={"fields": {"cursor": ["Not a cursor of this list with these filters."]}},
        )
    return cursor[0]


def _batch_range_sql(column: str) -> str:
    """A redundant bound that keeps a batch filter cheap: ``column`` (a comparison id) within
    the batch's first and last comparison ids (the (batch, id) index answers both at once).
    Without it the planner may walk every newer comparison to reach an old batch."""
    return (
        f"{column} BETWEEN (SELECT MIN(r.id) FROM annotation_comparison r WHERE r.batch_id = %s) "  # noqa: S608 - only placeholders and constants
        "AND (SELECT MAX(r.id) FROM annotation_comparison r WHERE r.batch_id = %s)"
    )


# --- rendering helpers -------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            return value
        value = parsed
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.isoformat())


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _prompt_preview_sql(alias: str) -> str:
    """The last message of the conversation (the turn being answered), cut to a preview."""
    if connection.vendor == "postgresql":
        return f"substr({alias}.messages -> -1 ->> 'content', 1, {PREVIEW_CHARS})"
    return f"substr(json_extract({alias}.messages, '$[#-1].content'), 1, {PREVIEW_CHARS})"


def _turns_sql(alias: str) -> str:
    if connection.vendor == "postgresql":
        return f"jsonb_array_length({alias}.messages)"
    return f"json_array_length({alias}.messages)"


def _status(is_gold: bool, judgment_count: int, target_votes: int) -> str:
    if is_gold:
        return "gold"
    return "complete" if judgment_count >= target_votes else "open"


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _page(
    kind: str, rows: list[dict[str, Any]], limit: int, keys: tuple[str, ...] = ("id",)
) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    if not (more and rows):
        return Page(rows, None)
    return Page(rows, encode_cursor(kind, *(rows[-1][k] for k in keys)))


def _user_table() -> str:
    return str(get_user_model()._meta.db_table)


# --- lists -------------------------------------------------------------------------------------


def browse_prompts(
    *, project_id: int, filters: BrowseFilters, cursor: tuple[int, ...] | None, limit: int
) -> Page:
    """Prompts, newest first: preview, external id, first batch, number of comparisons."""
    after = _one_key(cursor)
    where = ["p.project_id = %s"]
    params: list[Any] = [project_id]
    if after is not None:
        where.append("p.id < %s")
        params.append(after)
    if filters.external_id is not None:
        where.append("p.external_id = %s")
        params.append(filters.external_id)
        if filters.batch is not None:
            where.append(
                "EXISTS (SELECT 1 FROM annotation_comparison bc "
                "WHERE bc.prompt_id = p.id AND bc.batch_id = %s)"
            )
            params.append(filters.batch)
    elif filters.batch is not None:
        # the batch's prompts, newest first, straight from the (batch, prompt) index
        bound = "" if after is None else " AND bc.prompt_id < %s"
        where.append(
            "p.id IN (SELECT DISTINCT bc.prompt_id FROM annotation_comparison bc "  # noqa: S608 - only placeholders and constants
            f"WHERE bc.batch_id = %s{bound} ORDER BY bc.prompt_id DESC LIMIT %s)"
        )
        params += [filters.batch, *([] if after is None else [after]), limit + 1]
    sql = (
        "SELECT q.id, q.external_id, q.preview, q.turns, q.created_at, q.n, q.batch_id, b.name "  # noqa: S608 - only placeholders and constants
        f"FROM (SELECT p.id, p.external_id, {_prompt_preview_sql('p')} AS preview, "
        f"{_turns_sql('p')} AS turns, p.created_at, "
        "(SELECT COUNT(*) FROM annotation_comparison c WHERE c.prompt_id = p.id) AS n, "
        "(SELECT c.batch_id FROM annotation_comparison c WHERE c.prompt_id = p.id "
        "ORDER BY c.id LIMIT 1) AS batch_id "
        f"FROM annotation_prompt p WHERE {' AND '.join(where)} "
        "ORDER BY p.id DESC LIMIT %s) q "
        "LEFT JOIN annotation_batch b ON b.id = q.batch_id ORDER BY q.id DESC"
    )
    rows = _fetch(sql, [*params, limit + 1])
    results = [
        {
            "id": pid,
            "external_id": external_id,
            "preview": preview or "",
            "turns": turns,
            "created_at": _iso(created),
            "comparisons": n,
            "batch": None if batch_id is None else {"id": batch_id, "name": batch_name},
        }
        for pid, external_id, preview, turns, created, n, batch_id, batch_name in rows
    ]
    return _page("prompts", results, limit)


def _comparison_where(
    project_id: int, filters: BrowseFilters, cursor: tuple[int, ...] | None
) -> tuple[list[str], list[Any]]:
    after = _one_key(cursor)
    where = ["c.project_id = %s"]
    params: list[Any] = [project_id]
    agreement = filters.agreement_min is not None or filters.agreement_max is not None
    if after is not None:
        where.append("c.id < %s")
        params.append(after)
        if agreement:
            where.append("v.comparison_id < %s")
            params.append(after)
    if filters.batch is not None:
        where.append("c.batch_id = %s")
        params.append(filters.batch)
        for column in ("c.id", "v.comparison_id") if agreement else ("c.id",):
            where.append(_batch_range_sql(column))
            params += [filters.batch, filters.batch]
    if filters.prompt is not None:
        where.append("c.prompt_id = %s")
        params.append(filters.prompt)
    if filters.gold is not None:
        where.append("c.is_gold = %s")
        params.append(filters.gold)
    if filters.status == "gold":
        where.append("c.is_gold = %s")
        params.append(True)
    elif filters.status == "complete":
        where.append("c.is_gold = %s AND c.judgment_count >= c.target_votes")
        params.append(False)
    elif filters.status == "open":
        where.append("c.is_gold = %s AND c.judgment_count < c.target_votes")
        params.append(False)
    if filters.annotator is not None:
        where.append(
            "EXISTS (SELECT 1 FROM annotation_judgment aj "
            "WHERE aj.comparison_id = c.id AND aj.annotator_id = %s)"
        )
        params.append(filters.annotator)
    if agreement:
        where.append("v.project_id = %s")
        params.append(project_id)
    if filters.agreement_min is not None:
        where.append("v.agreement >= %s")
        params.append(filters.agreement_min)
    if filters.agreement_max is not None:
        where.append("v.agreement <= %s")
        params.append(filters.agreement_max)
    return where, params


def _votes(
    votes: int | None, consensus: str | None, agreement: float | None, tally: tuple[Any, ...]
) -> dict[str, Any]:
    n_a, n_b, n_tie, n_both_bad = (int(x or 0) for x in tally)
    return {
        "votes": int(votes or 0),
        "consensus": consensus or None,
        "agreement": None if agreement is None else round(float(agreement), 4),
        "tally": {"A": n_a, "B": n_b, "tie": n_tie, "both_bad": n_both_bad},
    }


def browse_comparisons(
    *, project_id: int, filters: BrowseFilters, cursor: tuple[int, ...] | None, limit: int
) -> Page:
    """Comparisons, newest first, with previews of both responses and their vote tallies."""
    where, params = _comparison_where(project_id, filters, cursor)
    sql = (
        "SELECT c.id, c.batch_id, b.name, c.prompt_id, p.external_id, "  # noqa: S608 - only placeholders and constants
        f"{_prompt_preview_sql('p')}, c.response_a_id, substr(ra.content, 1, {PREVIEW_CHARS}), "
        f"c.response_b_id, substr(rb.content, 1, {PREVIEW_CHARS}), c.is_gold, c.gold_choice, "
        "c.target_votes, c.judgment_count, c.lease_count, c.created_at, "
        "v.votes, v.consensus, v.agreement, v.n_a, v.n_b, v.n_tie, v.n_both_bad "
        "FROM annotation_comparison c "
        "JOIN annotation_batch b ON b.id = c.batch_id "
        "JOIN annotation_prompt p ON p.id = c.prompt_id "
        "JOIN annotation_response ra ON ra.id = c.response_a_id "
        "JOIN annotation_response rb ON rb.id = c.response_b_id "
        f"LEFT JOIN {VOTES_TABLE} v ON v.comparison_id = c.id "
        f"WHERE {' AND '.join(where)} ORDER BY c.id DESC LIMIT %s"
    )
    results = []
    for row in _fetch(sql, [*params, limit + 1]):
        (cid, batch_id, batch_name, prompt_id, external_id, preview) = row[:6]
        (a_id, a_text, b_id, b_text, is_gold, gold_choice, target, judged, leased) = row[6:15]
        results.append(
            {
                "id": cid,
                "batch": {"id": batch_id, "name": batch_name},
                "prompt": {"id": prompt_id, "external_id": external_id, "preview": preview or ""},
                "response_a": {"id": a_id, "preview": a_text},
                "response_b": {"id": b_id, "preview": b_text},
                "gold": bool(is_gold),
                "gold_choice": gold_choice or None,
                "status": _status(bool(is_gold), judged, target),
                "target_votes": target,
                "judgment_count": judged,
                "lease_count": leased,
                "created_at": _iso(row[15]),
                **_votes(row[16], row[17], row[18], row[19:23]),
            }
        )
    return _page("comparisons", results, limit)


def browse_judgments(
    *, project_id: int, filters: BrowseFilters, cursor: tuple[int, ...] | None, limit: int
) -> Page:
    """Judgments, newest first, with their annotator, comparison, prompt and batch.

    Filtered by batch or to gold, they come comparison by comparison (newest comparison
    first, then newest judgment): such judgments are spread thinly over the whole id range,
    their comparisons are not (a batch) or have their own index (gold), so this order reads
    only the matching rows at any depth."""
    where = ["j.project_id = %s"]
    params: list[Any] = [project_id]
    by_comparison = filters.batch is not None or filters.gold is True
    if filters.batch is not None:
        where.append(_batch_range_sql("j.comparison_id"))
        params += [filters.batch, filters.batch]
    if by_comparison:
        where.append("c.project_id = %s")
        params.append(project_id)
        order = "j.comparison_id DESC, j.id DESC"
        if cursor is not None:
            if len(cursor) != 2:
                raise InvalidCursor(
                    "cursor: not a cursor of this list with these filters.",
                    extra={"fields": {"cursor": ["Not a cursor of this list with these filters."]}},
                )
            # the first condition lets the (comparison, annotator) index start at the cursor
            where.append("j.comparison_id <= %s AND (j.comparison_id < %s OR j.id < %s)")
            params += [cursor[0], cursor[0], cursor[1]]
    else:
        order = "j.id DESC"
        after = _one_key(cursor)
        if after is not None:
            where.append("j.id < %s")
            params.append(after)
    for column, value in (
        ("j.annotator_id", filters.annotator),
        ("j.comparison_id", filters.comparison),
        ("j.choice", filters.choice),
        ("c.batch_id", filters.batch),
        ("c.prompt_id", filters.prompt),
        ("c.is_gold", filters.gold),
    ):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    sql = (
        "SELECT j.id, j.annotator_id, u.username, j.comparison_id, c.prompt_id, p.external_id, "  # noqa: S608 - only placeholders and constants
        "c.batch_id, b.name, j.choice, j.strength, j.time_taken_ms, j.swapped, j.created_at, "
        "c.is_gold, c.gold_choice "
        "FROM annotation_judgment j "
        "JOIN annotation_comparison c ON c.id = j.comparison_id "
        "JOIN annotation_prompt p ON p.id = c.prompt_id "
        "JOIN annotation_batch b ON b.id = c.batch_id "
        f"JOIN {_user_table()} u ON u.id = j.annotator_id "
        f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT %s"
    )
    results = [
        {
            "id": jid,
            "annotator": {"id": annotator_id, "username": username},
            "comparison_id": comparison_id,
            "prompt": {"id": prompt_id, "external_id": external_id},
            "batch": {"id": batch_id, "name": batch_name},
            "choice": choice,
            "strength": strength,
            "time_taken_ms": time_taken,
            "swapped": bool(swapped),
            "created_at": _iso(created),
            "gold": bool(is_gold),
            "gold_choice": gold_choice or None,
        }
        for (
            jid,
            annotator_id,
            username,
            comparison_id,
            prompt_id,
            external_id,
            batch_id,
            batch_name,
            choice,
            strength,
            time_taken,
            swapped,
            created,
            is_gold,
            gold_choice,
        ) in _fetch(sql, [*params, limit + 1])
    ]
    keys = ("comparison_id", "id") if by_comparison else ("id",)
    return _page("judgments", results, limit, keys)


# --- one comparison ----------------------------------------------------------------------------


def comparison_history(*, project_id: int, comparison_id: int) -> dict[str, Any]:
    """One comparison of the project in full (prompt, both responses, vote tallies) with every
    judgment, every undone judgment (its revision) and every lease (active, submitted, skipped,
    expired) made on it."""
    comparison = (
        Comparison.objects.filter(project_id=project_id, pk=comparison_id)
        .select_related("batch", "prompt", "response_a", "response_b")
        .first()
    )
    if comparison is None:
        raise NotFoundError("No such comparison in this project.")
    tally = _fetch(
        f"SELECT votes, consensus, agreement, n_a, n_b, n_tie, n_both_bad FROM {VOTES_TABLE} "  # noqa: S608 - only placeholders and constants
        "WHERE comparison_id = %s",
        [comparison.pk],
    )
    votes = tally[0] if tally else (0, "", None, 0, 0, 0, 0)
    judgments = Judgment.objects.filter(comparison=comparison).select_related("annotator")
    leases = Assignment.objects.filter(comparison=comparison).select_related("annotator")
    revisions = JudgmentRevision.objects.filter(comparison=comparison).select_related(
        "annotator", "undone_by"
    )
    excluded = set(excluded_annotator_ids(project_id=project_id))
    batch, prompt = comparison.batch, comparison.prompt
    return {
        "id": comparison.pk,
        "batch": {"id": batch.pk, "name": batch.name},
        "prompt": {
            "id": prompt.pk,
            "external_id": prompt.external_id,
            "messages": _json(prompt.messages),
            "metadata": _json(prompt.metadata),
        },
        "response_a": _response(comparison.response_a),
        "response_b": _response(comparison.response_b),
        "gold": comparison.is_gold,
        "gold_choice": comparison.gold_choice or None,
        "status": _status(comparison.is_gold, comparison.judgment_count, comparison.target_votes),
        "target_votes": comparison.target_votes,
        "judgment_count": comparison.judgment_count,
        "lease_count": comparison.lease_count,
        "created_at": _iso(comparison.created_at),
        **_votes(votes[0], votes[1], votes[2], votes[3:7]),
        "judgments": [
            {
                "id": j.pk,
                "annotator": {"id": j.annotator_id, "username": j.annotator.get_username()},
                "annotator_excluded": j.annotator_id in excluded,
                "assignment_id": j.assignment_id,
                "choice": j.choice,
                "strength": j.strength,
                "rationale": j.rationale,
                "time_taken_ms": j.time_taken_ms,
                "swapped": j.swapped,
                "created_at": _iso(j.created_at),
            }
            for j in judgments.order_by("created_at", "id")
        ],
        "leases": [
            {
                "id": a.pk,
                "annotator": {"id": a.annotator_id, "username": a.annotator.get_username()},
                "status": a.status,
                "swapped": a.swapped,
                "created_at": _iso(a.created_at),
                "expires_at": _iso(a.expires_at),
                "closed_at": _iso(a.closed_at),
                "skip_reason": a.skip_reason,
            }
            for a in leases.order_by("created_at", "id")
        ],
        "revisions": [_revision(r, excluded) for r in revisions.order_by("judged_at", "id")],
    }


def _revision(r: JudgmentRevision, excluded: set[int]) -> dict[str, Any]:
    """An undone judgment as it was, who took it back when, and what replaced it (if any)."""
    return {
        "id": r.pk,
        "judgment_id": r.judgment_id_was,
        "annotator": {"id": r.annotator_id, "username": r.annotator.get_username()},
        "annotator_excluded": r.annotator_id in excluded,
        "assignment_id": r.assignment_id,
        "choice": r.choice,
        "strength": r.strength,
        "rationale": r.rationale,
        "time_taken_ms": r.time_taken_ms,
        "swapped": r.swapped,
        "judged_at": _iso(r.judged_at),
        "undone_at": _iso(r.undone_at),
        "undone_by": {"id": r.undone_by_id, "username": r.undone_by.get_username()},
        "resubmitted_judgment_id": r.resubmitted_judgment_id,
    }


def _response(response: Any) -> dict[str, Any]:
    return {
        "id": response.pk,
        "content": response.content,
        "source": response.source,
        "model_artifact_id": response.model_artifact_id,
        "round_number": response.round_number,
        "metadata": _json(response.metadata),
    }
