"""The queue's hot statements, as plain SQL: ``next`` and ``submit`` run a handful of short
statements each, without ORM query compilation (the bulk of their CPU otherwise).

Portable between PostgreSQL and SQLite; row locks (``FOR UPDATE … SKIP LOCKED``) are added
where the database has them. Table names come from the models' metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

from annotation.models import (
    AnnotatorExclusion,
    Assignment,
    Comparison,
    Judgment,
    JudgmentRevision,
    Project,
    ProjectMembership,
    Prompt,
    Response,
)

T_ASSIGNMENT = Assignment._meta.db_table
T_EXCLUSION = AnnotatorExclusion._meta.db_table
T_COMPARISON = Comparison._meta.db_table
T_JUDGMENT = Judgment._meta.db_table
T_REVISION = JudgmentRevision._meta.db_table
T_MEMBERSHIP = ProjectMembership._meta.db_table
T_PROJECT = Project._meta.db_table
T_PROMPT = Prompt._meta.db_table
T_RESPONSE = Response._meta.db_table


@dataclass(frozen=True)
class Scheme:
    """The project's label scheme and queue settings."""

    overlap_k: int
    lease_ttl_seconds: int
    gold_rate: float
    allow_tie: bool
    allow_both_bad: bool
    strength_scale: bool
    rationale_mode: str


SCHEME_COLUMNS = (
    "p.overlap_k, p.lease_ttl_seconds, p.gold_rate, p.allow_tie, p.allow_both_bad, "
    "p.strength_scale, p.rationale_mode"
)


def scheme_from(row: tuple[Any, ...]) -> Scheme:
    k, ttl, gold_rate, tie, both_bad, strength, rationale = row
    return Scheme(
        int(k),
        int(ttl),
        float(gold_rate),
        bool(tie),
        bool(both_bad),
        bool(strength),
        str(rationale),
    )


def lock_clause(table_alias: str, *, skip_locked: bool = False) -> str:
    """``FOR UPDATE OF alias [SKIP LOCKED]`` where the database supports it, else nothing."""
    features = connection.features
    if not features.has_select_for_update:
        return ""
    clause = " FOR UPDATE"
    if features.has_select_for_update_of:
        clause += f" OF {table_alias}"
    if skip_locked and features.has_select_for_update_skip_locked:
        clause += " SKIP LOCKED"
    return clause


def db_datetime(value: datetime) -> Any:
    """A datetime as the database backend stores it (SQLite keeps text, PostgreSQL timestamptz)."""
    return connection.ops.adapt_datetimefield_value(value)


def py_datetime(value: Any) -> datetime:
    """A datetime read back from a raw row, timezone-aware."""
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = parse_datetime(str(value))  # type: ignore[assignment]
        if parsed is None:
            raise ValueError(f"not a datetime: {value!r}")
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def py_json(value: Any) -> Any:
    """A JSON column read back from a raw row (psycopg parses jsonb; SQLite gives text)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def fetchone(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return tuple(row) if row is not None else None


def fetchall(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(r) for r in cursor.fetchall()]


def execute(sql: str, params: list[Any]) -> int:
    """Run a statement; returns the number of rows it touched."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


# --- next --------------------------------------------------------------------------------------

# The member's role, whether an admin excluded them (an active exclusion row), then the scheme.
MEMBERSHIP_FOR_UPDATE = (
    f"SELECT m.role, EXISTS (SELECT 1 FROM {T_EXCLUSION} e WHERE e.project_id = m.project_id "
    "AND e.annotator_id = m.user_id AND e.revoked_at IS NULL), p.archived_at IS NOT NULL, "
    f"{SCHEME_COLUMNS} FROM {T_MEMBERSHIP} m "
    f"JOIN {T_PROJECT} p ON p.id = m.project_id WHERE m.project_id = %s AND m.user_id = %s"
)

LIVE_LEASES = (
    f"SELECT a.id, a.expires_at, a.comparison_id FROM {T_ASSIGNMENT} a "
    "WHERE a.project_id = %s AND a.annotator_id = %s AND a.status = 'active' "
    "ORDER BY a.created_at, a.id"
)

PICK_OPEN = (
    f"SELECT c.id FROM {T_COMPARISON} c "
    "WHERE c.project_id = %s AND c.is_gold = %s "
    "AND c.judgment_count < (c.target_votes - c.lease_count) "
    f"AND NOT EXISTS (SELECT 1 FROM {T_ASSIGNMENT} x "
    "WHERE x.comparison_id = c.id AND x.annotator_id = %s) "
    "ORDER BY c.judgment_count DESC, c.id LIMIT 1"
)

# The same pick, away from the prompt of the annotator's latest lease: consecutive items come
# from different prompts while other work is open (PICK_OPEN is the fallback). The latest
# lease is one index probe (annotator, project, created_at), evaluated once per pick.
PICK_OPEN_OTHER_PROMPT = (
    f"SELECT c.id FROM {T_COMPARISON} c "
    "WHERE c.project_id = %s AND c.is_gold = %s "
    "AND c.judgment_count < (c.target_votes - c.lease_count) "
    f"AND NOT EXISTS (SELECT 1 FROM {T_ASSIGNMENT} x "
    "WHERE x.comparison_id = c.id AND x.annotator_id = %s) "
    f"AND c.prompt_id <> COALESCE((SELECT c2.prompt_id FROM {T_ASSIGNMENT} a2 "
    f"JOIN {T_COMPARISON} c2 ON c2.id = a2.comparison_id "
    "WHERE a2.annotator_id = %s AND a2.project_id = %s "
    "ORDER BY a2.created_at DESC, a2.id DESC LIMIT 1), -1) "
    "ORDER BY c.judgment_count DESC, c.id LIMIT 1"
)

PICK_GOLD = (
    f"SELECT c.id FROM {T_COMPARISON} c "
    "WHERE c.project_id = %s AND c.is_gold = %s "
    f"AND NOT EXISTS (SELECT 1 FROM {T_ASSIGNMENT} x "
    "WHERE x.comparison_id = c.id AND x.annotator_id = %s) "
    "ORDER BY c.id LIMIT 1"
)

INSERT_LEASE = (
    f"INSERT INTO {T_ASSIGNMENT} (project_id, comparison_id, annotator_id, status, swapped, "
    "created_at, expires_at, closed_at, skip_reason) "
    "VALUES (%s, %s, %s, 'active', %s, %s, %s, NULL, '') RETURNING id"
)

TAKE_SLOT = f"UPDATE {T_COMPARISON} SET lease_count = lease_count + 1 WHERE id = %s"

LEASE_CONTENT = (
    "SELECT a.id, a.comparison_id, a.swapped, a.expires_at, c.is_gold, p.messages, "
    "ra.content, rb.content "
    f"FROM {T_ASSIGNMENT} a JOIN {T_COMPARISON} c ON c.id = a.comparison_id "
    f"JOIN {T_PROMPT} p ON p.id = c.prompt_id "
    f"JOIN {T_RESPONSE} ra ON ra.id = c.response_a_id "
    f"JOIN {T_RESPONSE} rb ON rb.id = c.response_b_id WHERE a.id = %s"
)

# --- submit ------------------------------------------------------------------------------------

OWN_LEASE_FOR_UPDATE = (
    "SELECT a.id, a.status, a.swapped, a.comparison_id, a.expires_at, "
    f"{SCHEME_COLUMNS}, j.id, "
    f"EXISTS (SELECT 1 FROM {T_EXCLUSION} e WHERE e.project_id = a.project_id "
    "AND e.annotator_id = a.annotator_id AND e.revoked_at IS NULL), "
    # an undone judgment of this lease waiting for its replacement (annotation.undo)
    f"(SELECT r.id FROM {T_REVISION} r WHERE r.assignment_id = a.id "
    "AND r.resubmitted_judgment_id IS NULL) "
    f"FROM {T_ASSIGNMENT} a JOIN {T_PROJECT} p ON p.id = a.project_id "
    f"JOIN {T_MEMBERSHIP} m ON m.project_id = a.project_id AND m.user_id = a.annotator_id "
    "AND m.role = 'annotator' "
    f"LEFT JOIN {T_JUDGMENT} j ON j.assignment_id = a.id "
    "WHERE a.id = %s AND a.project_id = %s AND a.annotator_id = %s"
)

CONVERT_LEASE = (
    f"UPDATE {T_COMPARISON} SET lease_count = lease_count - 1, "
    "judgment_count = judgment_count + 1 WHERE id = %s"
)

TAKE_FREE_SLOT = (
    f"UPDATE {T_COMPARISON} SET judgment_count = judgment_count + 1 "
    "WHERE id = %s AND judgment_count < (target_votes - lease_count)"
)

INSERT_JUDGMENT = (
    f"INSERT INTO {T_JUDGMENT} (assignment_id, project_id, comparison_id, annotator_id, "
    "choice, strength, rationale, time_taken_ms, swapped, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)

CLOSE_LEASE = f"UPDATE {T_ASSIGNMENT} SET status = 'submitted', closed_at = %s WHERE id = %s"

JUDGMENT_BY_ID = (
    "SELECT id, assignment_id, choice, strength, rationale, time_taken_ms, swapped, created_at "
    f"FROM {T_JUDGMENT} WHERE id = %s"
)

JUDGMENT_ID_OF_LEASE = f"SELECT id FROM {T_JUDGMENT} WHERE assignment_id = %s"

# The resubmission after an undo: the new judgment replaces the open revision.
LINK_REVISION = f"UPDATE {T_REVISION} SET resubmitted_judgment_id = %s WHERE id = %s"
