"""PostgreSQL fast path of :func:`annotation.publishing.publish_comparisons`: rows are streamed
with ``COPY``, either straight into the tables (prompts that are new: nothing they hold can
conflict) or into temporary staging tables and moved with one ``INSERT … SELECT … ON CONFLICT
DO NOTHING`` per table and chunk (prompts that exist: a re-import, or generation).

Same semantics as the ORM path in :mod:`annotation.publishing` (which SQLite uses): prompts
keyed by external id, responses by content hash, comparisons by canonical pair.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.db import connection
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter

from annotation.comparison_specs import (
    IMPORTED,
    PromptComparisons,
    PublishCounts,
    ResponseSpec,
    canonical_pairs,
)
from annotation.models import GOLD_TARGET_VOTES, Batch, Comparison, Project, Prompt, Response

PROMPT = Prompt._meta.db_table
RESPONSE = Response._meta.db_table
COMPARISON = Comparison._meta.db_table

STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS publish_stage_prompt
    (external_id text, messages text, metadata text) ON COMMIT DROP;
CREATE TEMPORARY TABLE IF NOT EXISTS publish_stage_response
    (prompt_id bigint, content text, sha bigint, source text, model_artifact_id bigint,
     round_number integer, metadata text) ON COMMIT DROP;
CREATE TEMPORARY TABLE IF NOT EXISTS publish_stage_comparison
    (prompt_id bigint, a bigint, b bigint, gold text) ON COMMIT DROP;
TRUNCATE publish_stage_prompt, publish_stage_response, publish_stage_comparison;
"""


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def supports_fast_path() -> bool:
    return connection.vendor == "postgresql"


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]").search


def _text(value: str) -> str:
    """A string in COPY's text format. Most need no escape: one scan finds out, and only the
    others are translated (a translation looks up every character)."""
    return value.translate(_ESCAPES) if _NEEDS_ESCAPE(value) else value


def _json_text(value: Any) -> str:
    """A value as JSON in COPY's text format: orjson escapes every control character inside
    strings and writes no whitespace, so only its backslashes need doubling."""
    return orjson.dumps(value).decode().replace("\\", "\\\\")


def _field(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _copy(cursor: Any, table: str, columns: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """COPY rows in text format, in large blocks, sent by a writer thread so that Python
    formats the next block while PostgreSQL ingests the previous one."""
    writer = QueuedLibpqWriter(cursor)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN", writer=writer) as copy:
        block: list[str] = []
        for row in rows:
            block.append("\t".join(map(_field, row)))
            if len(block) >= 1000:
                copy.write("\n".join(block) + "\n")
                block.clear()
        if block:
            copy.write("\n".join(block) + "\n")


def write_chunk_postgres(
    project: Project,
    batch: Batch,
    items: Sequence[PromptComparisons],
    *,
    keep_response_ids: bool = False,
) -> PublishCounts:
    """Insert a chunk now (:func:`prepare_chunk_postgres`, then its writes)."""
    return prepare_chunk_postgres(project, batch, items, keep_response_ids=keep_response_ids)()


def prepare_chunk_postgres(
    project: Project,
    batch: Batch,
    items: Sequence[PromptComparisons],
    *,
    keep_response_ids: bool = False,
    keys_new: bool = False,
) -> Callable[[], PublishCounts]:
    """Look up which keyed prompts exist, and return the chunk's writes, to be run when the
    caller chooses (:func:`annotation.publishing.publish_comparisons` runs them while the next
    chunk is read). Items whose prompt is new (the common case of an import) are copied
    straight into the tables with ids drawn from the sequences beforehand; items whose prompt
    exists — found by external id, or named by ``prompt_id`` (checked and locked by the
    caller) — go through the staged ``ON CONFLICT`` path. The caller holds the project's
    publishing lock, so nothing else adds the same prompts or responses meanwhile.

    ``keys_new``: the caller knows that no keyed prompt exists (an import into a project
    that had no prompts: the import refuses a repeated id, and the lock keeps other
    publications out), so the lookup is skipped — at a million prompts it was a large share
    of the server's work. Were the caller wrong, the prompts' unique constraint would refuse
    the chunk and the whole publication would roll back: nothing is ever written twice.

    The writes use the transaction's psycopg connection directly (not Django's thread-bound
    wrapper), so that they may run on another thread; nothing else may use the connection
    while they run.
    """
    keyed = [item for item in items if item.prompt_id is None]
    existing: set[str] = set()
    if keyed and not keys_new:
        with connection.cursor() as wrapper:
            # the keys travel as one JSON array: orjson writes it far faster than the driver
            # adapts a list of strings
            wrapper.execute(
                f"SELECT external_id FROM {PROMPT} WHERE project_id = %s "
                "AND external_id = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))",
                [project.id, orjson.dumps([item.external_id for item in keyed]).decode()],
            )
            existing = {row[0] for row in wrapper.fetchall()}
    fresh = [item for item in keyed if item.external_id not in existing]
    fresh_rows = _format_fresh(project, fresh) if fresh else None
    stored = [item for item in items if item.prompt_id is not None or item.external_id in existing]
    raw = connection.connection

    def write() -> PublishCounts:
        counts = PublishCounts()
        with raw.cursor() as cursor:
            if fresh_rows is not None:
                _add(
                    counts,
                    _write_fresh(
                        cursor, project, batch, fresh_rows, keep_response_ids=keep_response_ids
                    ),
                )
            if stored:
                _add(counts, _write_staged(cursor, project, batch, stored))
        return counts

    return write


def _add(total: PublishCounts, part: PublishCounts) -> None:
    total.prompts_created += part.prompts_created
    total.responses_created += part.responses_created
    total.responses_existing += part.responses_existing
    total.comparisons_created += part.comparisons_created
    total.comparisons_existing += part.comparisons_existing
    total.response_ids.update(part.response_ids)


def _write_staged(
    cursor: Any, project: Project, batch: Batch, items: list[PromptComparisons]
) -> PublishCounts:
    """Items some of whose prompts exist: stage, then insert with ON CONFLICT."""
    counts = PublishCounts()
    cursor.execute(STAGING)

    # 1. Prompts, keyed by external id (an item naming its prompt id is not staged).
    by_key = [item for item in items if item.prompt_id is None]
    prompt_ids: dict[str, int] = {}
    if by_key:
        _copy(
            cursor,
            "publish_stage_prompt",
            "external_id, messages, metadata",
            [(i.external_id, _json(i.messages), _json(i.metadata)) for i in by_key],
        )
        cursor.execute(
            f"INSERT INTO {PROMPT} (project_id, external_id, messages, metadata, created_at) "
            "SELECT %s, external_id, messages::jsonb, metadata::jsonb, now() "
            "FROM publish_stage_prompt ON CONFLICT (project_id, external_id) DO NOTHING",
            [project.id],
        )
        counts.prompts_created = cursor.rowcount
        cursor.execute(
            f"SELECT p.external_id, p.id FROM {PROMPT} p JOIN publish_stage_prompt s "
            "ON s.external_id = p.external_id WHERE p.project_id = %s",
            [project.id],
        )
        prompt_ids = dict(cursor.fetchall())

    def prompt_of(item: PromptComparisons) -> int:
        return item.prompt_id if item.prompt_id is not None else prompt_ids[item.external_id]

    # 2. Responses, keyed by (prompt, content hash); an existing row is kept as it is.
    wanted: dict[tuple[int, int], tuple[Any, ...]] = {}
    for item in items:
        pid = prompt_of(item)
        for spec in item.responses:
            key = (pid, spec.content_hash)
            if key not in wanted:
                wanted[key] = (
                    pid,
                    spec.content,
                    spec.content_hash,
                    spec.source,
                    spec.model_artifact_id,
                    spec.round_number,
                    _json(spec.metadata),
                )
    _copy(
        cursor,
        "publish_stage_response",
        "prompt_id, content, sha, source, model_artifact_id, round_number, metadata",
        list(wanted.values()),
    )
    cursor.execute(
        f"INSERT INTO {RESPONSE} (prompt_id, content, content_hash, source, "
        "model_artifact_id, round_number, metadata, created_at) "
        "SELECT prompt_id, content, sha, source, model_artifact_id, round_number, "
        "metadata::jsonb, now() "
        "FROM publish_stage_response ON CONFLICT (prompt_id, content_hash) DO NOTHING"
    )
    counts.responses_created = cursor.rowcount
    counts.responses_existing = len(wanted) - cursor.rowcount
    cursor.execute(
        f"SELECT r.prompt_id, r.content_hash, r.id FROM {RESPONSE} r "
        "JOIN publish_stage_response s ON s.prompt_id = r.prompt_id "
        "AND s.sha = r.content_hash"
    )
    counts.response_ids = {(p, h): i for p, h, i in cursor.fetchall()}
    response_ids = counts.response_ids

    # 3. Comparisons, canonical order (smaller response id is A).
    rows = list(
        canonical_pairs(
            (pid, item, [response_ids[(pid, spec.content_hash)] for spec in item.responses])
            for item in items
            for pid in (prompt_of(item),)
        )
    )
    _copy(cursor, "publish_stage_comparison", "prompt_id, a, b, gold", rows)
    cursor.execute(
        f"INSERT INTO {COMPARISON} "
        "(project_id, batch_id, prompt_id, response_a_id, response_b_id, gold_choice, "
        " is_gold, target_votes, judgment_count, lease_count, created_at) "
        "SELECT %s, %s, prompt_id, a, b, gold, gold <> '', "
        "CASE WHEN gold <> '' THEN %s ELSE %s END, 0, 0, now() "
        "FROM publish_stage_comparison "
        "ON CONFLICT (response_a_id, response_b_id) DO NOTHING",
        [project.id, batch.id, GOLD_TARGET_VOTES, project.overlap_k],
    )
    counts.comparisons_created = cursor.rowcount
    counts.comparisons_existing = len(rows) - cursor.rowcount
    return counts


def _next_ids(cursor: Any, table: str, n: int) -> Sequence[int]:
    """Draw ``n`` ids from the table's sequence (the regclass is resolved once, not per row).

    The server draws them and answers with their range: alone on the sequence (the usual
    case) they are consecutive, and only the first and last cross the wire — fetching a
    million single-value rows was a large share of the import's time. When another session
    drew ids meanwhile, the ids drawn are fetched as one array. Either way they come in
    increasing order (:func:`_format_fresh` relies on it).
    """
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    (sequence,) = cursor.fetchone()
    cursor.execute(
        "WITH drawn AS (SELECT nextval(%s::regclass) AS id FROM generate_series(1, %s)) "
        "SELECT min(id), max(id), count(*), "
        "CASE WHEN max(id) - min(id) + 1 = count(*) THEN NULL ELSE array_agg(id) END "
        "FROM drawn",
        [sequence, n],
    )
    low, high, count, scattered = cursor.fetchone()
    if count != n:  # pragma: no cover - the server drew fewer rows than asked
        raise RuntimeError(f"drew {count} ids from {sequence}, expected {n}")
    return range(low, high + 1) if scattered is None else sorted(scattered)


def _copy_lines(cursor: Any, table: str, columns: str, lines: Iterable[str]) -> None:
    """COPY pre-formatted text lines (each ends with a newline), in large blocks."""
    writer = QueuedLibpqWriter(cursor)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN", writer=writer) as copy:
        block: list[str] = []
        for line in lines:
            block.append(line)
            if len(block) >= 2000:
                copy.write("".join(block))
                block.clear()
        if block:
            copy.write("".join(block))


IMPORTED_PROVENANCE = f"{IMPORTED}\t\\N\t\\N"


def _provenance(spec: ResponseSpec) -> str:
    """A response's source, model artifact and round in COPY's text format."""
    if spec.source == IMPORTED and spec.model_artifact_id is None and spec.round_number is None:
        return IMPORTED_PROVENANCE  # every row of an import
    artifact = "\\N" if spec.model_artifact_id is None else spec.model_artifact_id
    number = "\\N" if spec.round_number is None else spec.round_number
    return f"{spec.source}\t{artifact}\t{number}"


def _metadata(metadata: dict[str, Any]) -> str:
    return _json_text(metadata) if metadata else "{}"


@dataclass
class _FreshRows:
    """A chunk of new prompts, formatted for COPY but for the ids (drawn when written): each
    row's text after its ids, and the comparisons as indices of the chunk's responses."""

    prompt_tails: list[str]
    response_prompts: list[int]  # the index of each response's prompt in prompt_tails
    response_tails: list[str]
    response_hashes: list[int]
    comparisons: list[tuple[int, int, int, str]]  # (prompt index, response a, b, gold)
    comparison_tail: str
    gold_tail: str


def _format_fresh(project: Project, items: list[PromptComparisons]) -> _FreshRows:
    """Items whose prompts are new, formatted straight into COPY's text format (at a million
    rows the per-value formatting is a large share of the import's time) — all but the ids,
    so that this runs while the previous chunk is being written.

    The ids drawn for a chunk's rows increase with the rows' order (:func:`_next_ids`), so
    the canonical order of a pair (the smaller response id is A) is the order of the
    responses' indices here."""
    now = timezone.now().isoformat()
    head = f"\t{project.id}\t"
    prompt_tails = [
        f"{head}{_text(i.external_id)}\t{_json_text(i.messages)}\t{_metadata(i.metadata)}\t{now}\n"
        for i in items
    ]
    # Responses: unique per (prompt, content); each item's candidates point at their row.
    response_prompts: list[int] = []
    response_tails: list[str] = []
    response_hashes: list[int] = []
    comparisons: list[tuple[int, int, int, str]] = []
    for p, item in enumerate(items):
        first_index: dict[int, int] = {}
        rows: list[int] = []
        for spec in item.responses:
            k = first_index.get(spec.content_hash)
            if k is None:
                k = first_index[spec.content_hash] = len(response_tails)
                response_prompts.append(p)
                response_hashes.append(spec.content_hash)
                response_tails.append(
                    f"\t{_text(spec.content)}\t{spec.content_hash}\t"
                    f"{_provenance(spec)}\t{_metadata(spec.metadata)}\t{now}\n"
                )
            rows.append(k)
        comparisons.extend((p, a, b, gold) for _, a, b, gold in canonical_pairs([(p, item, rows)]))
    return _FreshRows(
        prompt_tails,
        response_prompts,
        response_tails,
        response_hashes,
        comparisons,
        comparison_tail=f"\t\tf\t{project.overlap_k}\t0\t0\t{now}\n",
        gold_tail=f"\tt\t{GOLD_TARGET_VOTES}\t0\t0\t{now}\n",
    )


def _write_fresh(
    cursor: Any, project: Project, batch: Batch, rows: _FreshRows, *, keep_response_ids: bool
) -> PublishCounts:
    """Draw the ids of :func:`_format_fresh`'s rows and copy them into the tables."""
    prompt_ids = _next_ids(cursor, PROMPT, len(rows.prompt_tails))
    _copy_lines(
        cursor,
        PROMPT,
        "id, project_id, external_id, messages, metadata, created_at",
        (f"{pid}{tail}" for pid, tail in zip(prompt_ids, rows.prompt_tails, strict=True)),
    )
    response_ids = _next_ids(cursor, RESPONSE, len(rows.response_tails))
    _copy_lines(
        cursor,
        RESPONSE,
        "id, prompt_id, content, content_hash, source, model_artifact_id, round_number, "
        "metadata, created_at",
        (
            f"{rid}\t{prompt_ids[p]}{tail}"
            for rid, p, tail in zip(
                response_ids, rows.response_prompts, rows.response_tails, strict=True
            )
        ),
    )
    head = f"{project.id}\t{batch.id}\t"
    regular, gold_tail = rows.comparison_tail, rows.gold_tail
    _copy_lines(
        cursor,
        COMPARISON,
        "project_id, batch_id, prompt_id, response_a_id, response_b_id, gold_choice, "
        "is_gold, target_votes, judgment_count, lease_count, created_at",
        (
            f"{head}{prompt_ids[p]}\t{response_ids[a]}\t{response_ids[b]}\t{gold}{gold_tail}"
            if gold
            else f"{head}{prompt_ids[p]}\t{response_ids[a]}\t{response_ids[b]}{regular}"
            for p, a, b, gold in rows.comparisons
        ),
    )
    return PublishCounts(
        prompts_created=len(rows.prompt_tails),
        responses_created=len(rows.response_tails),
        comparisons_created=len(rows.comparisons),
        response_ids={
            (prompt_ids[p], sha): rid
            for rid, p, sha in zip(
                response_ids, rows.response_prompts, rows.response_hashes, strict=True
            )
        }
        if keep_response_ids
        else {},
    )


def lock_project_publishing(project: Project) -> None:
    """Serialize publications into one project — imports and generations write the same
    prompt and response keys — (transaction-scoped advisory lock), and check foreign keys as
    rows stream in rather than all at commit."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7301, project.id])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
