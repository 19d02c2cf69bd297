"""PostgreSQL fast path of the import: rows are streamed with ``COPY`` into temporary staging
tables, then moved with one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` per table and chunk.

Same semantics as the ORM path in :mod:`annotation.importing` (which SQLite uses): prompts
keyed by external id, responses by content hash, comparisons by canonical pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson
from django.db import connection
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter

from annotation.import_records import PairsFor, PromptRecord, ResponseSpec, canonical_pairs
from annotation.models import GOLD_TARGET_VOTES, Batch, Comparison, Project, Prompt, Response

PROMPT = Prompt._meta.db_table
RESPONSE = Response._meta.db_table
COMPARISON = Comparison._meta.db_table

STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS import_stage_prompt
    (external_id text, messages text, metadata text) ON COMMIT DROP;
CREATE TEMPORARY TABLE IF NOT EXISTS import_stage_response
    (prompt_id bigint, content text, sha bigint, metadata text) ON COMMIT DROP;
CREATE TEMPORARY TABLE IF NOT EXISTS import_stage_comparison
    (prompt_id bigint, a bigint, b bigint, gold text) ON COMMIT DROP;
TRUNCATE import_stage_prompt, import_stage_response, import_stage_comparison;
"""


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def supports_fast_path() -> bool:
    return connection.vendor == "postgresql"


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _field(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
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


def _write_staged(
    project: Project, batch: Batch, records: list[PromptRecord], pairs_for: PairsFor
) -> tuple[int, int, int, int]:
    """Records some of whose prompts may exist: stage, then insert with ON CONFLICT."""
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # the psycopg cursor, for COPY
        cursor.execute(STAGING)

        # 1. Prompts, keyed by external id.
        _copy(
            cursor,
            "import_stage_prompt",
            "external_id, messages, metadata",
            [
                (
                    r.external_id,
                    _json(r.messages),
                    _json(r.metadata),
                )
                for r in records
            ],
        )
        cursor.execute(
            f"INSERT INTO {PROMPT} (project_id, external_id, messages, metadata, created_at) "
            "SELECT %s, external_id, messages::jsonb, metadata::jsonb, now() "
            "FROM import_stage_prompt ON CONFLICT (project_id, external_id) DO NOTHING",
            [project.id],
        )
        prompts_created = cursor.rowcount
        cursor.execute(
            f"SELECT p.external_id, p.id FROM {PROMPT} p JOIN import_stage_prompt s "
            "ON s.external_id = p.external_id WHERE p.project_id = %s",
            [project.id],
        )
        prompt_ids: dict[str, int] = dict(cursor.fetchall())

        # 2. Responses, keyed by (prompt, content hash).
        wanted: dict[tuple[int, int], tuple[int, str, int, str]] = {}
        for r in records:
            pid = prompt_ids[r.external_id]
            for spec in r.responses:
                key = (pid, spec.content_hash)
                if key not in wanted:
                    metadata = _json(spec.metadata)
                    wanted[key] = (pid, spec.content, spec.content_hash, metadata)
        _copy(
            cursor,
            "import_stage_response",
            "prompt_id, content, sha, metadata",
            list(wanted.values()),
        )
        cursor.execute(
            f"INSERT INTO {RESPONSE} "
            "(prompt_id, content, content_hash, source, metadata, created_at) "
            "SELECT prompt_id, content, sha, 'imported', metadata::jsonb, now() "
            "FROM import_stage_response ON CONFLICT (prompt_id, content_hash) DO NOTHING"
        )
        responses_created = cursor.rowcount
        cursor.execute(
            f"SELECT r.prompt_id, r.content_hash, r.id FROM {RESPONSE} r "
            "JOIN import_stage_response s ON s.prompt_id = r.prompt_id "
            "AND s.sha = r.content_hash"
        )
        response_ids = {(p, h): i for p, h, i in cursor.fetchall()}

        # 3. Comparisons, canonical order (smaller response id is A).
        rows = list(
            canonical_pairs(
                (
                    (pid, r, [response_ids[(pid, spec.content_hash)] for spec in r.responses])
                    for r in records
                    for pid in (prompt_ids[r.external_id],)
                ),
                pairs_for,
            )
        )
        _copy(cursor, "import_stage_comparison", "prompt_id, a, b, gold", rows)
        cursor.execute(
            f"INSERT INTO {COMPARISON} "
            "(project_id, batch_id, prompt_id, response_a_id, response_b_id, gold_choice, "
            " is_gold, target_votes, judgment_count, lease_count, created_at) "
            "SELECT %s, %s, prompt_id, a, b, gold, gold <> '', "
            "CASE WHEN gold <> '' THEN %s ELSE %s END, 0, 0, now() "
            "FROM import_stage_comparison "
            "ON CONFLICT (response_a_id, response_b_id) DO NOTHING",
            [project.id, batch.id, GOLD_TARGET_VOTES, project.overlap_k],
        )
        comparisons_created = cursor.rowcount
    return prompts_created, responses_created, comparisons_created, len(rows) - comparisons_created


def write_chunk_postgres(
    project: Project, batch: Batch, records: list[PromptRecord], pairs_for: PairsFor
) -> tuple[int, int, int, int]:
    """Insert a chunk; returns (prompts, responses, comparisons created, comparisons existing).

    Records whose prompt is new (the common case) are copied straight into the tables with
    ids drawn from the sequences beforehand — nothing they hold can conflict. Records whose
    prompt exists (a re-import) go through the staged ``ON CONFLICT`` path. The caller holds
    the project's import lock, so no other import adds the same prompts meanwhile.
    """
    with connection.cursor() as wrapper:
        wrapper.execute(
            f"SELECT external_id FROM {PROMPT} WHERE project_id = %s "
            "AND external_id = ANY(%s::text[])",
            [project.id, [r.external_id for r in records]],
        )
        existing = {row[0] for row in wrapper.fetchall()}
    fresh = [r for r in records if r.external_id not in existing]
    totals = _write_fresh(project, batch, fresh, pairs_for) if fresh else (0, 0, 0, 0)
    old = [r for r in records if r.external_id in existing]
    if old:
        staged = _write_staged(project, batch, old, pairs_for)
        totals = tuple(a + b for a, b in zip(totals, staged, strict=True))  # type: ignore[assignment]
    return totals


def _next_ids(cursor: Any, table: str, n: int) -> list[int]:
    """Draw ``n`` ids from the table's sequence (the regclass is resolved once, not per row)."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    (sequence,) = cursor.fetchone()
    cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, n])
    return [row[0] for row in cursor.fetchall()]


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


def _write_fresh(
    project: Project, batch: Batch, records: list[PromptRecord], pairs_for: PairsFor
) -> tuple[int, int, int, int]:
    """Records whose prompts are new. Rows are formatted straight into COPY's text format:
    at a million rows the per-value formatting is a large share of the import's time."""
    now = timezone.now().isoformat()
    esc = _ESCAPES
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        prompt_ids = _next_ids(cursor, PROMPT, len(records))
        head = f"\t{project.id}\t"
        _copy_lines(
            cursor,
            PROMPT,
            "id, project_id, external_id, messages, metadata, created_at",
            (
                f"{pid}{head}{r.external_id.translate(esc)}\t{_json(r.messages).translate(esc)}"
                f"\t{_json(r.metadata).translate(esc)}\t{now}\n"
                for pid, r in zip(prompt_ids, records, strict=True)
            ),
        )
        # Responses: unique per (prompt, content); index_maps point each record's candidates
        # at their unique row.
        unique_specs: list[tuple[int, ResponseSpec]] = []
        index_maps: list[list[int]] = []
        for pid, r in zip(prompt_ids, records, strict=True):
            first_index: dict[int, int] = {}
            for spec in r.responses:
                if spec.content_hash not in first_index:
                    first_index[spec.content_hash] = len(unique_specs)
                    unique_specs.append((pid, spec))
            index_maps.append([first_index[spec.content_hash] for spec in r.responses])
        response_ids = _next_ids(cursor, RESPONSE, len(unique_specs))
        _copy_lines(
            cursor,
            RESPONSE,
            "id, prompt_id, content, content_hash, source, metadata, created_at",
            (
                f"{rid}\t{pid}\t{spec.content.translate(esc)}\t{spec.content_hash}\timported"
                f"\t{_json(spec.metadata).translate(esc) if spec.metadata else '{}'}\t{now}\n"
                for rid, (pid, spec) in zip(response_ids, unique_specs, strict=True)
            ),
        )
        counter = [0]
        _copy_lines(
            cursor,
            COMPARISON,
            "project_id, batch_id, prompt_id, response_a_id, response_b_id, gold_choice, "
            "is_gold, target_votes, judgment_count, lease_count, created_at",
            _comparison_lines(
                project,
                batch,
                records,
                prompt_ids,
                index_maps,
                response_ids,
                pairs_for,
                now,
                counter,
            ),
        )
    return len(records), len(unique_specs), counter[0], 0


def _comparison_lines(
    project: Project,
    batch: Batch,
    records: list[PromptRecord],
    prompt_ids: list[int],
    index_maps: list[list[int]],
    response_ids: list[int],
    pairs_for: PairsFor,
    now: str,
    counter: list[int],
) -> Iterator[str]:
    """Comparison rows in canonical order (smaller response id is A), each pair once."""
    head = f"{project.id}\t{batch.id}\t"
    regular_tail = f"\t\tf\t{project.overlap_k}\t0\t0\t{now}\n"
    with_ids = (
        (pid, r, [response_ids[k] for k in index_map])
        for pid, r, index_map in zip(prompt_ids, records, index_maps, strict=True)
    )
    for pid, a, b, gold in canonical_pairs(with_ids, pairs_for):
        counter[0] += 1
        if gold:
            yield f"{head}{pid}\t{a}\t{b}\t{gold}\tt\t{GOLD_TARGET_VOTES}\t0\t0\t{now}\n"
        else:
            yield f"{head}{pid}\t{a}\t{b}{regular_tail}"


def lock_project_imports(project: Project) -> None:
    """Serialize imports into one project (transaction-scoped advisory lock), and check
    foreign keys as rows stream in rather than all at commit."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7301, project.id])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
